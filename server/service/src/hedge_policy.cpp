#include "probity/service/hedge_policy.h"

#include <algorithm>
#include <cmath>

namespace probity::service {

void HedgePolicy::Observe(absl::Duration latency) {
  const double sample = absl::ToDoubleMilliseconds(latency);
  std::lock_guard lock(mutex_);
  if (!observed_) {
    observed_ = true;
    smoothed_ms_ = sample;
    deviation_ms_ = sample / 2;
    return;
  }
  // RFC 6298 section 2.3, with its alpha = 1/8 and beta = 1/4.
  deviation_ms_ = 0.75 * deviation_ms_ + 0.25 * std::abs(smoothed_ms_ - sample);
  smoothed_ms_ = 0.875 * smoothed_ms_ + 0.125 * sample;
}

absl::Duration HedgePolicy::Delay() const {
  std::lock_guard lock(mutex_);
  if (!observed_) return options_.max_delay;  // nothing known yet: do not hedge eagerly
  const absl::Duration delay = absl::Milliseconds(smoothed_ms_ + 4 * deviation_ms_);
  return std::clamp(delay, options_.min_delay, std::max(options_.min_delay, options_.max_delay));
}

void HedgePolicy::EarnCredit() {
  std::lock_guard lock(mutex_);
  credit_percent_ = std::min<int64_t>(kBurst * 100, credit_percent_ + options_.budget_percent);
}

bool HedgePolicy::TakeCredit() {
  std::lock_guard lock(mutex_);
  if (credit_percent_ < 100) return false;
  credit_percent_ -= 100;
  return true;
}

}  // namespace probity::service
