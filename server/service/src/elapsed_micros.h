#pragma once

// Adds the wall time since `started` to a counter of microseconds (ServiceCounters and
// ShardCounters: how long searches spent in each phase, summed over searches), and to that
// phase's histogram where it has one.

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "probity/service/latency_histogram.h"

namespace probity::service::internal {

inline uint64_t MicrosSince(absl::Time started) {
  return static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - started));
}

inline void AddMicrosSince(absl::Time started, std::atomic<uint64_t>& total) {
  total.fetch_add(MicrosSince(started));
}

inline void AddMicrosSince(absl::Time started, std::atomic<uint64_t>& total,
                           LatencyHistogram& each) {
  const uint64_t micros = MicrosSince(started);
  total.fetch_add(micros);
  each.Observe(micros);
}

}  // namespace probity::service::internal
