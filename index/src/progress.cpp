#include "probity/index/progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace probity::index {
namespace {

constexpr int kBarWidth = 30;

std::string FormatRate(double per_second) {
  if (per_second >= 1e6) return absl::StrFormat("%.2fM", per_second / 1e6);
  if (per_second >= 1e3) return absl::StrFormat("%.1fk", per_second / 1e3);
  return absl::StrFormat("%.1f", per_second);
}

}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, std::ostream& out)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      line_(out),
      start_(std::chrono::steady_clock::now()) {
  line_.Show(Text(), /*force=*/true);
}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Advance(int64_t done) { Set(done_ + done); }

void ProgressBar::Set(int64_t done) {
  done_ = done;
  if (!finished_ && line_.Due()) line_.Show(Text());
}

void ProgressBar::Finish() {
  if (finished_) return;
  line_.End(Text());
  finished_ = true;
}

std::string ProgressBar::FormatDuration(double seconds) {
  const int64_t total = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  const int64_t hours = total / 3600;
  if (hours > 0) return absl::StrFormat("%d:%02d:%02d", hours, total / 60 % 60, total % 60);
  return absl::StrFormat("%02d:%02d", total / 60, total % 60);
}

std::string ProgressBar::Render(const std::string& label, int64_t done, int64_t total,
                                const std::string& unit, double elapsed_seconds) {
  const double fraction = total > 0 ? std::clamp(static_cast<double>(done) / total, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(fraction * kBarWidth);
  const double rate = elapsed_seconds > 0 ? done / elapsed_seconds : 0;
  const std::string eta = rate > 0 ? FormatDuration((total - done) / rate) : std::string("--:--");
  return absl::StrFormat("%s [%s%s] %3d%% %d/%d %s %s/s elapsed %s ETA %s", label,
                         std::string(filled, '#'), std::string(kBarWidth - filled, '.'),
                         static_cast<int>(fraction * 100), done, total, unit, FormatRate(rate),
                         FormatDuration(elapsed_seconds), eta);
}

std::string ProgressBar::Text() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return Render(label_, done_, total_, unit_, elapsed);
}

}  // namespace probity::index
