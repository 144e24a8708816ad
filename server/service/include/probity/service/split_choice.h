#pragma once

// Whether a search with cores to spare should split its local shards over the fan-out pool (in
// parallel, each shard on its own thread) or search them in one call on its own thread
// (ShardBackend::SearchShards: one coarse assignment, no hand-off). Splitting wins when a shard
// search costs more than handing it to another thread and waking the caller again; one call wins
// when shards are small. Which holds depends on the shards and the machine (45 us shard searches
// on a 2-core VM searched faster in one call; shards of milliseconds search faster apart), so it
// is measured, not assumed: each way's latency (smoothed) from the searches that took it, the
// faster way for the next search, and now and then one search the other way so that a change
// (a new generation, other load) is noticed.

#include <cstdint>
#include <mutex>

#include "absl/time/time.h"

namespace probity::service {

class SplitChoice {
 public:
  // Searches each way takes first (apart first), before the two are compared.
  static constexpr int kFirstSamples = 4;
  // The slower way is tried again once this long has passed since it was last measured and at
  // least kDecisionsBetweenTries searches went the faster way: at most one search in
  // kDecisionsBetweenTries takes the slower way (below 1%, so a p99 latency never rests on it),
  // and at most one per kRetryAfter.
  static constexpr absl::Duration kRetryAfter = absl::Seconds(1);
  static constexpr int kDecisionsBetweenTries = 128;
  // Weight of a new latency in its way's smoothed estimate (as TCP's RFC 6298 smoothing).
  static constexpr double kWeight = 0.125;
  // ... and of the first after kRetryAfter without one.
  static constexpr double kStaleWeight = 0.5;

  // Whether the next search goes apart.
  bool Apart(absl::Time now);
  // A search that went apart (or not) took `latency` for its shard phase.
  void Observe(bool apart, absl::Duration latency, absl::Time now);

  struct Estimates {
    double apart_ms = 0;
    double together_ms = 0;
    int64_t apart_samples = 0;
    int64_t together_samples = 0;
  };
  Estimates Snapshot() const;

 private:
  struct Way {
    double smoothed_ms = 0;
    int64_t samples = 0;
    absl::Time measured_at = absl::InfinitePast();
  };

  mutable std::mutex mutex_;
  Way apart_, together_;
  int64_t decisions_since_try_ = 0;
};

}  // namespace probity::service
