#include "probity/service/replica_health.h"

#include <algorithm>
#include <cmath>

namespace probity::service {
namespace {

// Weight of a new sample at or below the estimate; one above it replaces the estimate at once
// (a "peak" EWMA), so a replica that turns slow loses its traffic on its first slow answer.
constexpr double kSampleWeight = 0.3;

}  // namespace

void ReplicaHealth::Started(bool hedge) {
  std::lock_guard lock(mutex_);
  ++counters_.attempts;
  ++counters_.in_flight;
  if (hedge) ++counters_.hedges_sent;
}

double ReplicaHealth::DecayedEstimateMs(absl::Time now) const {
  if (sampled_at_ == absl::InfinitePast()) return 0;
  const double age = std::max(0.0, absl::ToDoubleSeconds(now - sampled_at_));
  return estimate_ms_ * std::exp(-age / absl::ToDoubleSeconds(kLatencyDecay));
}

void ReplicaHealth::Sample(absl::Duration latency, absl::Time now, bool raise_only) {
  const double sample_ms = absl::ToDoubleMilliseconds(latency);
  const double decayed = DecayedEstimateMs(now);
  if (sample_ms >= decayed) {
    estimate_ms_ = sample_ms;
  } else if (raise_only) {
    estimate_ms_ = decayed;
  } else {
    estimate_ms_ = decayed + kSampleWeight * (sample_ms - decayed);
  }
  sampled_at_ = now;
}

void ReplicaHealth::Answered(absl::Duration latency, absl::Time now, bool hedge_won) {
  std::lock_guard lock(mutex_);
  --counters_.in_flight;
  ++counters_.answered;
  if (hedge_won) ++counters_.hedges_won;
  counters_.consecutive_failures = 0;
  retry_after_ = absl::InfinitePast();
  Sample(latency, now, /*raise_only=*/false);
}

uint64_t ReplicaHealth::Failed(const absl::Status& status, absl::Time now,
                               absl::Duration first_backoff, absl::Duration max_backoff) {
  std::lock_guard lock(mutex_);
  --counters_.in_flight;
  ++counters_.failures;
  ++counters_.consecutive_failures;
  counters_.last_failure = std::string(status.message());
  const int doublings =
      static_cast<int>(std::min<uint32_t>(counters_.consecutive_failures, 20)) - 1;
  retry_after_ = now + std::min(first_backoff * (int64_t{1} << doublings), max_backoff);
  ++unlogged_failures_;
  if (now - logged_at_ < kLogPeriod) return 0;
  logged_at_ = now;
  const uint64_t count = unlogged_failures_;
  unlogged_failures_ = 0;
  return count;
}

void ReplicaHealth::Overtaken(absl::Duration elapsed, absl::Time now) {
  std::lock_guard lock(mutex_);
  --counters_.in_flight;
  ++counters_.overtaken;
  Sample(elapsed, now, /*raise_only=*/true);
}

void ReplicaHealth::Abandoned() {
  std::lock_guard lock(mutex_);
  --counters_.in_flight;
}

double ReplicaHealth::Cost(absl::Time now) const {
  std::lock_guard lock(mutex_);
  return std::max(kCostFloorMs, DecayedEstimateMs(now)) *
         static_cast<double>(std::max<int64_t>(0, counters_.in_flight) + 1);
}

bool ReplicaHealth::BackingOff(absl::Time now) const {
  std::lock_guard lock(mutex_);
  return now < retry_after_;
}

ReplicaSnapshot ReplicaHealth::Snapshot(absl::Time now) const {
  std::lock_guard lock(mutex_);
  ReplicaSnapshot snapshot = counters_;
  snapshot.latency_ms = DecayedEstimateMs(now);
  return snapshot;
}

}  // namespace probity::service
