#include "probity/index/status_line.h"

#include <unistd.h>

#include <iostream>

namespace probity::index {
namespace {

bool IsTerminal(const std::ostream& out) {
  if (&out == &std::cerr || &out == &std::clog) return ::isatty(STDERR_FILENO) == 1;
  if (&out == &std::cout) return ::isatty(STDOUT_FILENO) == 1;
  return false;
}

}  // namespace

StatusLine::StatusLine(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {}

StatusLine::StatusLine(std::ostream& out) : StatusLine(out, IsTerminal(out)) {}

bool StatusLine::Due() const {
  return !shown_ || Clock::now() - shown_at_ >= (terminal_ ? kTerminalInterval : kLogInterval);
}

void StatusLine::Show(const std::string& text, bool force) {
  if (!force && !Due()) return;
  shown_ = true;
  shown_at_ = Clock::now();
  Write(text);
}

void StatusLine::End(const std::string& text) {
  Write(text);
  if (terminal_) out_ << "\n";
  out_.flush();
  shown_ = false;
}

void StatusLine::Write(const std::string& text) {
  if (terminal_) {
    out_ << "\r" << text << "\x1b[K";
  } else {
    out_ << text << "\n";
  }
  out_.flush();
}

}  // namespace probity::index
