#include "probity/service/batching_shard_backend.h"

#include <algorithm>
#include <atomic>
#include <exception>

#include "absl/strings/str_cat.h"

namespace probity::service {
namespace {

bool Qualifies(float score, std::optional<float> min_score, index::Metric metric) {
  if (!min_score) return true;
  return metric == index::Metric::kL2 ? score <= *min_score : score >= *min_score;
}

int64_t NumQueries(const ShardQuery& query) {
  return static_cast<int64_t>(query.queries.size()) / query.dim;
}

void WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
               absl::Time until) {
  if (until == absl::InfiniteFuture()) {
    wake.wait(lock);
  } else {
    wake.wait_until(lock, absl::ToChronoTime(until));
  }
}

absl::Status DeadlinePassed() {
  return absl::DeadlineExceededError(
      "the deadline passed while waiting for a batched shard search");
}

}  // namespace

// Why the cut is exact. FAISS keeps a k-heap per query and admits a candidate only when it is
// strictly better than the heap's worst, so a search with k ends holding k candidates none of
// which is worse than any candidate it dropped. The candidates and their scores do not depend
// on k (the same lists are scanned with the same per-query tables), so the answer with
// K >= k holds the K best of the same candidates. If the score at rank k is strictly better than
// the score at rank k + 1, the k best form one set that both searches keep; sorting by
// (score, id) as every backend does then gives the same list, and min_score removes the same
// suffix from both. If those two scores tie, the search with k keeps whichever tied candidate
// it scanned first, which the larger answer does not record: the request then runs alone.
std::optional<index::HitList> CutToRequest(const index::HitList& hits, int k,
                                           std::optional<float> min_score, index::Metric metric) {
  const size_t keep = std::min(hits.size(), static_cast<size_t>(std::max(k, 0)));
  if (keep > 0 && hits.size() > keep && hits[keep - 1].score == hits[keep].score) {
    return std::nullopt;
  }
  index::HitList cut;
  for (size_t i = 0; i < keep && Qualifies(hits[i].score, min_score, metric); ++i) {
    cut.push_back(hits[i]);
  }
  return cut;
}

struct BatchingShardBackend::Waiter {
  ShardQuery query;  // when queued, `query.queries` points into `owned`
  std::vector<float> owned;
  absl::Time deadline;
  absl::Time arrived;
  std::condition_variable wake;
  bool leader = false;     // forms and runs the lane's next call
  bool taken = false;      // part of a call; no longer in the queue
  bool run_alone = false;  // the shared answer does not determine this request's cut
  std::optional<absl::StatusOr<ShardAnswer>> result;
  // Set (after `result` or `run_alone`, under mutex_) when the request's call is over, so that
  // with direct_wakeups the request can return without taking mutex_ again.
  std::atomic<bool> answered{false};
  // direct_wakeups: the waiter's own signal, set under its own mutex.
  std::mutex signal_mutex;
  std::condition_variable signal;
  bool signalled = false;
};

struct BatchingShardBackend::Lane {
  std::deque<std::shared_ptr<Waiter>> queue;  // arrival order
  int64_t queued_queries = 0;
  int running = 0;          // calls in progress, at most options_.calls_in_flight
  bool has_leader = false;  // invariant: a non-empty queue has a leader, its front
};

BatchingShardBackend::BatchingShardBackend(std::shared_ptr<ShardBackend> inner,
                                           BatchingOptions options, ShardCounters& counters)
    : inner_(std::move(inner)), options_(options), counters_(counters) {
  options_.max_batch_queries = std::max(1, options_.max_batch_queries);
  options_.max_wait = std::max(absl::ZeroDuration(), options_.max_wait);
  options_.calls_in_flight = std::max(1, options_.calls_in_flight);
}

// Every waiter blocks in Search on a caller's thread and every call runs on one of them, so
// when no Search is in progress (the only time the owner can destroy this) nothing is queued.
BatchingShardBackend::~BatchingShardBackend() = default;

size_t BatchingShardBackend::queued() const {
  std::lock_guard lock(mutex_);
  size_t waiting = 0;
  for (const auto& [key, lane] : lanes_) waiting += lane->queue.size();
  return waiting;
}

absl::StatusOr<ShardAnswer> BatchingShardBackend::Search(const ShardQuery& query,
                                                         absl::Time deadline) {
  // Malformed searches are refused by the inner backend exactly as without batching.
  if (query.dim <= 0 || query.queries.empty() || query.queries.size() % query.dim != 0 ||
      query.params.k <= 0 || query.params.nprobe <= 0) {
    return inner_->Search(query, deadline);
  }
  if (absl::Now() >= deadline) return DeadlinePassed();
  const LaneKey key{query.collection, query.shard, query.dim, query.metric, query.params.nprobe};
  auto waiter = std::make_shared<Waiter>();
  waiter->query = query;
  waiter->deadline = deadline;

  std::unique_lock lock(mutex_);
  std::unique_ptr<Lane>& slot = lanes_[key];
  if (slot == nullptr) slot = std::make_unique<Lane>();
  Lane& lane = *slot;
  if (!lane.has_leader && lane.running < options_.calls_in_flight &&
      options_.max_wait == absl::ZeroDuration()) {
    // A shard with nobody queued and a call free searches at once, on the caller's own
    // queries: a lone request never waits.
    lane.running += 1;
    waiter->leader = waiter->taken = true;
    lock.unlock();
    const std::vector<std::shared_ptr<Waiter>> alone = {waiter};
    BatchResults results = RunBatch(alone);
    lock.lock();
    Publish(alone, results, /*wake=*/false);
    CallOver(key, lane);
    lock.unlock();
    return Finish(*waiter);
  }

  // The caller may stop waiting (deadline) while a call is built from its queries: copy them.
  waiter->owned.assign(query.queries.begin(), query.queries.end());
  waiter->query.queries = waiter->owned;
  waiter->arrived = absl::Now();
  lane.queue.push_back(waiter);
  lane.queued_queries += NumQueries(query);
  if (!lane.has_leader) {
    lane.has_leader = true;
    waiter->leader = true;
  } else if (lane.queued_queries >= options_.max_batch_queries) {
    Wake(*lane.queue.front());  // a leader waiting for a fuller batch can go
  }

  while (!waiter->result && !waiter->run_alone) {
    const absl::Time now = absl::Now();
    if (now >= waiter->deadline) {
      // Still queued: leave (handing the lead on). In a running call: that call's answer for
      // this request is dropped; the other requests of the call are unaffected.
      if (!waiter->taken) {
        lane.queue.erase(std::find(lane.queue.begin(), lane.queue.end(), waiter));
        lane.queued_queries -= NumQueries(waiter->query);
        if (waiter->leader) PassTheLead(key, lane);
      }
      return DeadlinePassed();
    }
    // A leader whose lane runs as many calls as it may waits for one of them to end.
    const bool may_call = lane.running < options_.calls_in_flight;
    if (waiter->leader && !waiter->taken && may_call) {
      // Waiting to fill up must not cost the request its deadline: then it goes at once.
      const absl::Time fill_until = waiter->arrived + options_.max_wait < waiter->deadline
                                        ? waiter->arrived + options_.max_wait
                                        : waiter->arrived;
      if (lane.queued_queries < options_.max_batch_queries && now < fill_until) {
        if (!options_.direct_wakeups) {
          WaitUntil(waiter->wake, lock, fill_until);
        } else if (SleepUnlocked(*waiter, lock, fill_until)) {
          return Finish(*waiter);
        }
        continue;
      }
      std::vector<std::shared_ptr<Waiter>> batch = TakeBatch(lane);
      lane.running += 1;
      PassTheLead(key, lane);  // to whoever is left queued, for the next call
      lock.unlock();
      BatchResults results = RunBatch(batch);
      lock.lock();
      if (options_.next_call_first) {
        Publish(batch, results, /*wake=*/false);
        CallOver(key, lane);
        lock.unlock();
        for (const auto& member : batch) {
          if (member != waiter) Wake(*member);
        }
        return Finish(*waiter);  // the leader's own request is the first of its call
      }
      if (options_.direct_wakeups) {
        // The call's requests first, outside the lock: each returns without taking it.
        Publish(batch, results, /*wake=*/false);
        lock.unlock();
        for (const auto& member : batch) {
          if (member != waiter) Wake(*member);
        }
        lock.lock();
        CallOver(key, lane);
        lock.unlock();
        return Finish(*waiter);
      }
      // The call's requests first: woken under the lock, they take it before the leader
      // comes back for the hand-over.
      Publish(batch, results, /*wake=*/true);
      lock.unlock();
      lock.lock();
      CallOver(key, lane);
      continue;
    }
    if (!options_.direct_wakeups) {
      WaitUntil(waiter->wake, lock, waiter->deadline);
    } else if (SleepUnlocked(*waiter, lock, waiter->deadline)) {
      return Finish(*waiter);
    }
  }
  lock.unlock();
  return Finish(*waiter);
}

absl::StatusOr<ShardAnswer> BatchingShardBackend::Finish(Waiter& waiter) {
  // Published before the lock was released (or `answered` set), and touched by no one since.
  if (waiter.result) return *std::move(waiter.result);
  if (absl::Now() >= waiter.deadline) return DeadlinePassed();
  return inner_->Search(waiter.query, waiter.deadline);
}

std::vector<std::shared_ptr<BatchingShardBackend::Waiter>> BatchingShardBackend::TakeBatch(
    Lane& lane) {
  std::vector<std::shared_ptr<Waiter>> batch;
  int64_t queries = 0;
  const absl::Time now = absl::Now();
  // Strict arrival order (no later, smaller request jumps the queue), so nobody starves.
  while (!lane.queue.empty()) {
    std::shared_ptr<Waiter> next = lane.queue.front();
    const int64_t count = NumQueries(next->query);
    if (!batch.empty() && queries + count > options_.max_batch_queries) break;
    lane.queue.pop_front();
    lane.queued_queries -= count;
    next->taken = true;
    if (!batch.empty() && now >= next->deadline) {
      next->result = DeadlinePassed();
      next->answered.store(true, std::memory_order_release);
      Wake(*next);
      continue;
    }
    batch.push_back(std::move(next));
    queries += count;
  }
  return batch;
}

void BatchingShardBackend::PassTheLead(const LaneKey& key, Lane& lane) {
  lane.has_leader = false;
  if (lane.queue.empty()) {
    // Lanes are keyed by caller-chosen nprobe: never keep idle ones.
    if (lane.running == 0) lanes_.erase(key);
    return;
  }
  lane.has_leader = true;
  lane.queue.front()->leader = true;
  // A leader that may not call yet is woken when a call ends (CallOver) instead.
  if (lane.running < options_.calls_in_flight) Wake(*lane.queue.front());
}

void BatchingShardBackend::CallOver(const LaneKey& key, Lane& lane) {
  lane.running -= 1;
  if (lane.has_leader) {
    Wake(*lane.queue.front());  // it may call now
  } else if (lane.running == 0) {
    lanes_.erase(key);  // no call, nobody queued (a queue always has a leader)
  }
}

BatchingShardBackend::BatchResults BatchingShardBackend::RunBatch(
    const std::vector<std::shared_ptr<Waiter>>& batch) {
  // Unset results after Answer mean "run alone" (the shared answer cannot cut them exactly).
  BatchResults results(batch.size());
  // Whatever throws (the inner backend, an allocation), every waiter gets an answer and the
  // lane gets its next leader.
  try {
    Answer(batch, results);
  } catch (const std::exception& e) {
    for (auto& result : results) {
      result = absl::InternalError(absl::StrCat("shard search failed: ", e.what()));
    }
  } catch (...) {
    for (auto& result : results) {
      result = absl::InternalError("shard search failed with an unknown exception");
    }
  }
  return results;
}

void BatchingShardBackend::Publish(const std::vector<std::shared_ptr<Waiter>>& batch,
                                   BatchResults& results, bool wake) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results[i]) {
      batch[i]->result = std::move(*results[i]);
    } else {
      batch[i]->run_alone = true;
    }
    batch[i]->answered.store(true, std::memory_order_release);
    if (wake) Wake(*batch[i]);
  }
}

void BatchingShardBackend::Wake(Waiter& waiter) {
  if (!options_.direct_wakeups) {
    waiter.wake.notify_one();  // the waiter waits on `wake` with mutex_
    return;
  }
  {
    std::lock_guard own(waiter.signal_mutex);
    waiter.signalled = true;
  }
  waiter.signal.notify_one();
}

bool BatchingShardBackend::SleepUnlocked(Waiter& waiter, std::unique_lock<std::mutex>& lock,
                                         absl::Time until) {
  lock.unlock();
  {
    // A signal sent between the unlock and here is kept in `signalled`, so none is lost.
    std::unique_lock own(waiter.signal_mutex);
    const auto signalled = [&] { return waiter.signalled; };
    if (until == absl::InfiniteFuture()) {
      waiter.signal.wait(own, signalled);
    } else {
      waiter.signal.wait_until(own, absl::ToChronoTime(until), signalled);
    }
    waiter.signalled = false;
  }
  if (waiter.answered.load(std::memory_order_acquire)) return true;
  lock.lock();
  return false;
}

void BatchingShardBackend::Answer(const std::vector<std::shared_ptr<Waiter>>& batch,
                                  BatchResults& results) {
  if (batch.size() == 1) {
    results[0] = inner_->Search(batch[0]->query, batch[0]->deadline);
    return;
  }
  const ShardQuery& first = batch[0]->query;
  ShardQuery shared{first.collection, first.shard, first.dim, {}, first.params, first.metric};
  shared.params.min_score.reset();  // applied per request below
  std::vector<float> queries;
  absl::Time deadline = absl::InfinitePast();
  for (const auto& waiter : batch) {
    shared.params.k = std::max(shared.params.k, waiter->query.params.k);
    queries.insert(queries.end(), waiter->query.queries.begin(), waiter->query.queries.end());
    deadline = std::max(deadline, waiter->deadline);
  }
  shared.queries = queries;
  counters_.searches_coalesced.fetch_add(batch.size());
  absl::StatusOr<ShardAnswer> answer = inner_->Search(shared, deadline);
  if (answer.ok() && answer->hits.size() != static_cast<size_t>(NumQueries(shared))) {
    answer = absl::InternalError(absl::StrCat(inner_->Describe(), " answered ", answer->hits.size(),
                                              " of ", NumQueries(shared), " batched queries"));
  }
  size_t offset = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const ShardQuery& own = batch[i]->query;
    const int64_t count = NumQueries(own);
    if (!answer.ok()) {
      results[i] = answer.status();
      continue;
    }
    ShardAnswer mine;
    mine.generation = answer->generation;
    for (int64_t q = 0; q < count; ++q) {
      std::optional<index::HitList> cut =
          CutToRequest(answer->hits[offset + q], own.params.k, own.params.min_score, own.metric);
      if (!cut) break;
      mine.hits.push_back(*std::move(cut));
    }
    offset += count;
    if (mine.hits.size() == static_cast<size_t>(count)) results[i] = std::move(mine);
  }
}

std::unique_ptr<ShardBackend> MakeBatchingShardBackend(std::shared_ptr<ShardBackend> inner,
                                                       BatchingOptions options,
                                                       ShardCounters& counters) {
  return std::make_unique<BatchingShardBackend>(std::move(inner), options, counters);
}

}  // namespace probity::service
