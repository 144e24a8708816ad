// Dynamic batching's own cost, without FAISS or gRPC: concurrent single-query searches through
// BatchingShardBackend into a stand-in shard whose call takes a fixed time plus a time per
// query (a GPU's shape: FAISS GPU at nprobe 32 on 20 M x 512 takes about 0.33 ms for 16
// queries, 0.45 ms for 64 and 1.2 ms for 256) and answers every query with distinct scores.
//
// What it shows: how close the batcher keeps the shard to back-to-back calls. Everything the
// leader does between two calls (waking the requests of the last one, electing the next
// leader) leaves the shard idle, and how soon answered clients are back decides how full the
// next call is. Items are answered searches.
//
// A stand-in, not a GPU: the shard sleeps, and on a machine with few cores the woken clients
// queue for CPU in a way a GPU host's do not. An order of hand-over and wake-ups that this
// benchmark measured at 1.5x on two vCPUs made half-size batches and 0.69-0.94x the searches
// per second on a 16-core H200 host (bench/RESULTS.md); check a change here on a GPU.
//
//   build/bench/server/batching_bench --benchmark_repetitions=4
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
// (one command line)
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "probity/service/batching_shard_backend.h"

namespace probity::service {
namespace {

constexpr int kDim = 16;
constexpr int kK = 10;

// A shard whose every call takes `call_time` plus `query_time` per query of wall time
// (sleeping, so that the CPU is left to the batcher and its clients) and answers k hits per
// query.
class FixedTimeShard : public ShardBackend {
 public:
  FixedTimeShard(std::chrono::microseconds call_time, std::chrono::nanoseconds query_time)
      : call_time_(call_time), query_time_(query_time) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time /*deadline*/) override {
    calls_.fetch_add(1);
    const size_t queries = query.queries.size() / static_cast<size_t>(query.dim);
    std::this_thread::sleep_until(std::chrono::steady_clock::now() + call_time_ +
                                  query_time_ * static_cast<int64_t>(queries));
    ShardAnswer answer;
    answer.generation = "gen-1";
    answer.hits.resize(queries);
    for (size_t q = 0; q < queries; ++q) {
      for (int rank = 0; rank < query.params.k; ++rank) {
        answer.hits[q].push_back({static_cast<int64_t>(q * 1000 + rank), 1.0f - 0.01f * rank, 0});
      }
    }
    return answer;
  }
  std::string Describe() const override { return "fixed-time shard"; }
  uint64_t calls() const { return calls_.load(); }

 private:
  std::chrono::microseconds call_time_;
  std::chrono::nanoseconds query_time_;
  std::atomic<uint64_t> calls_{0};
};

// Arguments: concurrent clients, the shard's time per call in µs and per query in ns, the
// batcher's wait for a call to fill (max_wait) in µs, and the calls of the shard it may run at
// once (calls_in_flight: gpu.copies_per_shard). The stand-in's calls overlap perfectly, which
// GPU calls need not: with two in flight it shows what the batcher makes of two copies whose
// calls do not slow each other, the most that copies can give.
void BM_BatchedSingleQuerySearches(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  const auto call_time = std::chrono::microseconds(state.range(1));
  const auto query_time = std::chrono::nanoseconds(state.range(2));
  const int64_t wait_us = state.range(3);
  ShardCounters counters;
  BatchingOptions options;  // up to 256 queries per call, as the service's default
  options.max_wait = absl::Microseconds(wait_us);
  options.calls_in_flight = static_cast<int>(state.range(4));
  auto shard = std::make_shared<FixedTimeShard>(call_time, query_time);
  BatchingShardBackend batcher(shard, options, counters);
  const std::vector<float> query(kDim, 0.5f);
  ShardQuery shard_query{"bench", 0, kDim, query, {}, index::Metric::kInnerProduct};
  shard_query.params.k = kK;
  shard_query.params.nprobe = 32;

  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> failed{0};
  for (auto _ : state) {
    // Each iteration: every client searches back to back for a fixed window.
    const auto window_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    std::vector<std::thread> threads;
    threads.reserve(clients);
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        while (std::chrono::steady_clock::now() < window_end) {
          auto answer = batcher.Search(shard_query, absl::Now() + absl::Seconds(10));
          (answer.ok() && answer->hits.size() == 1 ? answered : failed).fetch_add(1);
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  if (failed.load() > 0) state.SkipWithError("a batched search failed");
  state.SetItemsProcessed(static_cast<int64_t>(answered.load()));
  // Queries per shard call: what batching reached (the ideal is every client in each call).
  state.counters["queries_per_call"] =
      shard->calls() == 0
          ? 0
          : static_cast<double>(answered.load()) / static_cast<double>(shard->calls());
}
BENCHMARK(BM_BatchedSingleQuerySearches)
    ->ArgNames({"clients", "call_us", "query_ns", "wait_us", "calls"})
    ->ArgsProduct({{16, 128}, {280}, {3500}, {0, 200}, {1, 2}})
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace probity::service

BENCHMARK_MAIN();
