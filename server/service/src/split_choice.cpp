#include "probity/service/split_choice.h"

namespace probity::service {

bool SplitChoice::Apart(absl::Time now) {
  std::lock_guard lock(mutex_);
  if (apart_.samples < kFirstSamples) return true;
  if (together_.samples < kFirstSamples) return false;
  const bool apart_faster = apart_.smoothed_ms <= together_.smoothed_ms;
  const Way& slower = apart_faster ? together_ : apart_;
  if (++decisions_since_try_ > kDecisionsBetweenTries && now - slower.measured_at >= kRetryAfter) {
    decisions_since_try_ = 0;
    return !apart_faster;
  }
  return apart_faster;
}

void SplitChoice::Observe(bool apart, absl::Duration latency, absl::Time now) {
  std::lock_guard lock(mutex_);
  Way& way = apart ? apart_ : together_;
  const double ms = absl::ToDoubleMilliseconds(latency);
  // A way measured again after a while (the slower way's occasional try) may have changed
  // more than smoothing would let one sample say.
  const double weight = now - way.measured_at >= kRetryAfter ? kStaleWeight : kWeight;
  way.smoothed_ms = way.samples == 0 ? ms : (1 - weight) * way.smoothed_ms + weight * ms;
  ++way.samples;
  way.measured_at = now;
}

SplitChoice::Estimates SplitChoice::Snapshot() const {
  std::lock_guard lock(mutex_);
  return Estimates{apart_.smoothed_ms, together_.smoothed_ms, apart_.samples, together_.samples};
}

}  // namespace probity::service
