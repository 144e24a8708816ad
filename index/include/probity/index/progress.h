#pragma once

// A one-line progress bar for long operator jobs (reading, training, adding) with the rate and
// the estimated time left, redrawn in place on a terminal and written as whole lines, every
// 30 s, anywhere else (StatusLine).

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "probity/index/status_line.h"

namespace probity::index {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit, std::ostream& out);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void Advance(int64_t done);  // adds `done` units
  void Set(int64_t done);      // absolute position
  void Finish();               // final line with the total time

  // "1:02:03" / "02:03"; exposed for tests.
  static std::string FormatDuration(double seconds);
  // The text of the bar for a given state, without the carriage return.
  static std::string Render(const std::string& label, int64_t done, int64_t total,
                            const std::string& unit, double elapsed_seconds);

 private:
  std::string Text() const;  // the bar now

  std::string label_;
  int64_t total_;
  std::string unit_;
  StatusLine line_;
  int64_t done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace probity::index
