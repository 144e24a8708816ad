#pragma once

// What one serving process counts about its searches (the Stats call and the metrics endpoint
// read them; tests use them to prove a refused request ran no shard search).

#include <atomic>
#include <cstdint>

#include "probity/service/latency_histogram.h"
#include "probity/service/shard_backend.h"

namespace probity::service {

struct ServiceCounters {
  std::atomic<uint64_t> searches_answered{0};
  std::atomic<uint64_t> searches_failed{0};
  std::atomic<uint64_t> refusals{0};
  std::atomic<uint64_t> searches_refused_busy{0};  // over max_in_flight: counted, not recorded
  std::atomic<int64_t> in_flight{0};
  // Wall time searches that passed their checks spent in the two phases where they wait on
  // others, summed: the shard phase (the router's fan-out, dynamic batching and the shard
  // searches themselves) and the ledger append (the group commit holding its entry). Over a
  // window, each divided by the searches answered and failed is its mean per search; what is
  // left of a call's latency is the warrant check, the answer and gRPC.
  std::atomic<uint64_t> shard_phase_micros{0};
  std::atomic<uint64_t> ledger_append_micros{0};
  // The same two waits, one observation per search: their tails (a p99 is not a mean).
  LatencyHistogram shard_phase_latency;
  LatencyHistogram ledger_append_latency;
  ShardCounters shards;  // searches run on the shards of this process
};

}  // namespace probity::service
