#pragma once

// What one serving process counts about its searches (the Stats call and the metrics endpoint
// read them; tests use them to prove a refused request ran no shard search).

#include <atomic>
#include <cstdint>

#include "probity/service/shard_backend.h"

namespace probity::service {

struct ServiceCounters {
  std::atomic<uint64_t> searches_answered{0};
  std::atomic<uint64_t> searches_failed{0};
  std::atomic<uint64_t> refusals{0};
  std::atomic<uint64_t> searches_refused_busy{0};  // over max_in_flight: counted, not recorded
  std::atomic<int64_t> in_flight{0};
  ShardCounters shards;  // searches run on the shards of this process
};

}  // namespace probity::service
