#pragma once

// What the router knows about one shard replica (one shard server, or the local shards): the
// attempts it has running, a latency estimate, its recent failures and counters for Admin.Stats.
// The router uses it to send each shard search to the replica likely to answer first, to pass
// over a replica that just failed for a short, growing while (so that a restarted server is
// tried again within that while), and to log failures without flooding the log.

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace probity::service {

// One replica's counters since the router started; Admin.Stats reports one per shard server.
struct ReplicaSnapshot {
  std::string server;
  uint64_t attempts = 0;     // shard searches sent to it (first tries, retries and hedges)
  uint64_t answered = 0;     // attempts it answered
  uint64_t failures = 0;     // attempts that ended in an error (not counting ones we cancelled)
  uint64_t hedges_sent = 0;  // attempts sent to it because another replica was slow
  uint64_t hedges_won = 0;   // of those, the ones whose answer was used
  uint64_t overtaken = 0;    // attempts cancelled because another replica answered first
  int64_t in_flight = 0;
  double latency_ms = 0;  // the current latency estimate (decayed, see ReplicaHealth)
  uint32_t consecutive_failures = 0;
  std::string last_failure;
};

class ReplicaHealth {
 public:
  // How long an estimate keeps its weight without new samples: an idle replica's estimate
  // decays toward zero, so a replica that was slow once is tried again after a few of these
  // rather than never (its next answer, fast or slow, sets the estimate again).
  static constexpr absl::Duration kLatencyDecay = absl::Seconds(2);
  // At most one failure log line per replica per this period; the next says how many were left
  // out.
  static constexpr absl::Duration kLogPeriod = absl::Seconds(10);

  void Started(bool hedge);
  // The attempt's answer was used (or arrived after another replica's and was dropped).
  void Answered(absl::Duration latency, absl::Time now, bool hedge_won);
  // The attempt ended in an error: the replica is passed over for `first_backoff`, doubled per
  // further consecutive failure up to `max_backoff`. Returns the number of failures not logged
  // since the last log line plus one when this one should be logged now, else 0.
  uint64_t Failed(const absl::Status& status, absl::Time now, absl::Duration first_backoff,
                  absl::Duration max_backoff);
  // Cancelled by the router because another replica answered first: `elapsed` is a lower bound
  // of its latency, and raises the estimate when it is above it.
  void Overtaken(absl::Duration elapsed, absl::Time now);
  // Cancelled because the search ended (its deadline passed); says nothing about the replica.
  void Abandoned();

  // Latencies below this count as this much when replicas are compared: differences there are
  // noise next to a network hop, and counting them would send all of a light load to whichever
  // replica happened to answer a little faster once.
  static constexpr double kCostFloorMs = 1.0;

  // Expected wait for a new attempt, in milliseconds: the latency estimate (at least
  // kCostFloorMs; a replica never heard from counts as that fast) times the attempts already
  // running plus one.
  double Cost(absl::Time now) const;
  // True while the replica is passed over after a failure.
  bool BackingOff(absl::Time now) const;
  ReplicaSnapshot Snapshot(absl::Time now) const;

 private:
  double DecayedEstimateMs(absl::Time now) const;  // callers hold mutex_
  void Sample(absl::Duration latency, absl::Time now, bool raise_only);

  mutable std::mutex mutex_;
  ReplicaSnapshot counters_;
  double estimate_ms_ = 0;
  absl::Time sampled_at_ = absl::InfinitePast();
  absl::Time retry_after_ = absl::InfinitePast();
  absl::Time logged_at_ = absl::InfinitePast();
  uint64_t unlogged_failures_ = 0;
};

}  // namespace probity::service
