#pragma once

// Adds the wall time since `started` to a counter of microseconds (ServiceCounters and
// ShardCounters: how long searches spent in each phase, summed over searches).

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace probity::service::internal {

inline void AddMicrosSince(absl::Time started, std::atomic<uint64_t>& total) {
  total.fetch_add(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - started)));
}

}  // namespace probity::service::internal
