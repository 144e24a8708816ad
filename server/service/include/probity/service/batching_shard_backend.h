#pragma once

// Dynamic batching of shard searches: concurrent searches of the same shard with the same
// FAISS-visible parameters (collection, shard, dimension, metric, nprobe) are coalesced into
// one call of the wrapped backend and the answer is split back per request. A GPU reaches its
// throughput only on batches; on CPU shards it saves FAISS calls but no measurable time.
//
// Leader/follower, no timer thread: the first search of an idle shard runs at once (unless a
// bounded wait is configured); searches arriving while a call runs queue up, and the oldest of
// them leads the next call: when a call ends (or at once, while fewer than `calls_in_flight`
// calls run) it takes the queue in arrival order up to `max_batch_queries` queries. A request
// larger than that runs alone.
//
// Each request keeps its own deadline (one that passes while waiting gets DEADLINE_EXCEEDED,
// the others are unaffected), gets its own k and min_score, and gets the batch's error when
// the call fails. Different k share a call with k = the largest; a request's hits are the
// first k of that answer (see CutToRequest for why that is exactly its answer alone).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/index/types.h"
#include "probity/service/shard_backend.h"

namespace probity::service {

struct BatchingOptions {
  int max_batch_queries = 256;                     // queries (summed over requests) per call
  absl::Duration max_wait = absl::ZeroDuration();  // how long a call may wait to fill up
  // When a call returns, its leader by default wakes the call's requests first and then hands
  // the shard to the next leader. With this, it hands the shard over first and wakes the
  // requests while the next call runs: less idle time between calls, but the next call starts
  // before the answered clients can send again, so it is smaller. Which is faster depends on the
  // machine and gRPC's polling engine (on H200s 0.82x-1.12x the default's searches per second,
  // bench/RESULTS.md); the GPU benchmark compares both in one run (--compare-next-call-first).
  bool next_call_first = false;
  // Each request waits on a signal of its own instead of the batcher's one condition, and an
  // answered request returns without taking the batcher's lock again. Without it, the requests
  // of a finished call wake one after another, each retaking that lock, and the next call's
  // leader queues behind them. Measured on an H200: a shorter shard phase, not more searches
  // per second (bench/RESULTS.md), so off by default.
  bool direct_wakeups = false;
  // Calls of one shard that may run at once. More than 1 only helps where the shard can search
  // that many calls at once without them slowing each other down: a GPU shard with as many
  // copies (GpuOptions::copies_per_shard), whose calls of a few dozen queries each leave most
  // of the GPU idle. The server sets it from gpu.copies_per_shard.
  int calls_in_flight = 1;
};

// How a request's own answer is cut from an answer computed with a larger k: its first `k`
// hits that pass its `min_score`. Returns nullopt when that cut is not determined by the
// larger answer, i.e. when the hit at rank k ties in score with the hit at rank k + 1: FAISS
// alone keeps whichever tied hit it scanned first, which the larger answer cannot tell. Hits
// must be best first (index::RanksBefore order), as every shard backend answers.
std::optional<index::HitList> CutToRequest(const index::HitList& hits, int k,
                                           std::optional<float> min_score, index::Metric metric);

class BatchingShardBackend : public ShardBackend {
 public:
  // `counters.searches_coalesced` counts the searches that shared a call with others.
  BatchingShardBackend(std::shared_ptr<ShardBackend> inner, BatchingOptions options,
                       ShardCounters& counters);
  ~BatchingShardBackend() override;

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time deadline) override;
  std::string Describe() const override { return inner_->Describe(); }
  absl::StatusOr<int64_t> Erase(const std::string& collection, const std::vector<int64_t>& ids,
                                const std::string& reason) override {
    return inner_->Erase(collection, ids, reason);
  }

  // Requests waiting for a call (not counting those in a running call); lets tests wait until
  // a batch has formed instead of sleeping.
  size_t queued() const;

 private:
  struct Waiter;
  struct Lane;
  // What FAISS sees: only requests agreeing on all of it may share a call.
  using LaneKey = std::tuple<std::string, int, int, index::Metric, int>;

  // Per waiter of a call: its answer, or unset when the shared answer cannot cut its own (it
  // then runs alone).
  using BatchResults = std::vector<std::optional<absl::StatusOr<ShardAnswer>>>;

  // Runs `batch` as one call of the inner backend; never throws.
  BatchResults RunBatch(const std::vector<std::shared_ptr<Waiter>>& batch);
  // The call itself and the split; may throw (RunBatch turns that into errors).
  void Answer(const std::vector<std::shared_ptr<Waiter>>& batch, BatchResults& results);
  // Hands every waiter of `batch` its result (under mutex_), waking each if `wake`.
  void Publish(const std::vector<std::shared_ptr<Waiter>>& batch, BatchResults& results, bool wake);
  // Wakes `waiter` for whatever changed for it (leader, a full queue, its result).
  void Wake(Waiter& waiter);
  // With direct_wakeups: releases `lock`, sleeps until the waiter is signalled or `until`, and
  // returns true (still unlocked) when its call is over; otherwise it retakes `lock`.
  bool SleepUnlocked(Waiter& waiter, std::unique_lock<std::mutex>& lock, absl::Time until);
  // The caller's answer once its call is over and the lock released: its share of the call,
  // or its own search when the share could not be cut, or the deadline.
  absl::StatusOr<ShardAnswer> Finish(Waiter& waiter);
  // Takes the next batch off the lane's queue (the caller is its oldest waiter, the leader).
  std::vector<std::shared_ptr<Waiter>> TakeBatch(Lane& lane);
  // The lane's leader took a batch or left the queue: its oldest waiter leads next (woken if it
  // may call now), or the lane is retired when nothing is queued or running.
  void PassTheLead(const LaneKey& key, Lane& lane);
  // One of the lane's calls is over: wake its leader, who may call now, or retire the lane.
  void CallOver(const LaneKey& key, Lane& lane);

  std::shared_ptr<ShardBackend> inner_;
  BatchingOptions options_;
  ShardCounters& counters_;
  mutable std::mutex mutex_;
  std::map<LaneKey, std::unique_ptr<Lane>> lanes_;  // only lanes with a leader or waiters
};

std::unique_ptr<ShardBackend> MakeBatchingShardBackend(std::shared_ptr<ShardBackend> inner,
                                                       BatchingOptions options,
                                                       ShardCounters& counters);

}  // namespace probity::service
