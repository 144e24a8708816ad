#pragma once

// One line of progress for a long operator job, written as a terminal or a log wants it. On a
// terminal the line is redrawn in place (carriage return, erase to the end of the line) at most
// every 200 ms. Anywhere else (a Kubernetes build job's log, a file, a CI log) redrawing would
// write five lines a second for hours, so the line is written whole, with a newline, at most
// every 30 s, and the last state always.

#include <chrono>
#include <iosfwd>
#include <string>

namespace probity::index {

class StatusLine {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kTerminalInterval = std::chrono::milliseconds(200);
  static constexpr Clock::duration kLogInterval = std::chrono::seconds(30);

  // `terminal`: redraw in place (see above).
  StatusLine(std::ostream& out, bool terminal);
  // A terminal when `out` is std::cerr / std::clog on a terminal stderr or std::cout on a
  // terminal stdout; any other stream is a log.
  explicit StatusLine(std::ostream& out);

  // True when Show would write now: nothing shown yet, or the interval has passed. Lets a
  // caller skip composing a text that would not be shown.
  bool Due() const;
  // Shows `text` if Due(), or if `force`.
  void Show(const std::string& text, bool force = false);
  // Shows `text` and ends the line: the next Show starts a new one.
  void End(const std::string& text);

  bool terminal() const { return terminal_; }

 private:
  void Write(const std::string& text);

  std::ostream& out_;
  const bool terminal_;
  Clock::time_point shown_at_;
  bool shown_ = false;
};

}  // namespace probity::index
