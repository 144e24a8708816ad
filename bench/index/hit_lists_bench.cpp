// What turning FAISS's result arrays into hit lists costs per query, for one shard's answer
// (ToHitLists) and with the k-way merge a multi-shard search adds (MergeTopK). A GPU shard
// answers a query in 1.7 us at nprobe 8, batch 1024 (bench/RESULTS.md, GPU), so tens of
// nanoseconds here are a visible share of it.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "hit_lists.h"
#include "probity/index/types.h"

namespace probity::index {
namespace {

struct FaissAnswer {
  std::vector<float> distances;
  std::vector<int64_t> labels;
};

// A full answer (no padding) with descending inner-product scores, as FAISS returns it. With
// `tied_top`, each list's first two hits share a score and come in descending id order, so
// ToHitLists must sort the list to put equal scores in id order.
FaissAnswer MakeAnswer(int64_t queries, int k, bool tied_top) {
  FaissAnswer answer;
  std::mt19937_64 rng(7);
  for (int64_t q = 0; q < queries; ++q) {
    for (int r = 0; r < k; ++r) {
      const int rank = tied_top && r == 1 ? 0 : r;
      answer.distances.push_back(1.0f - 0.01f * static_cast<float>(rank));
      answer.labels.push_back(static_cast<int64_t>(rng() % 20'000'000));
    }
    if (tied_top) {
      int64_t* first = &answer.labels[q * k];
      if (first[0] < first[1]) std::swap(first[0], first[1]);
    }
  }
  return answer;
}

// One shard's answer to `queries` queries, k = 10, as hit lists; with `merge`, also through the
// k-way merge of a multi-shard search; with `tied_top`, from lists that need sorting.
void HitListsOfOneShard(benchmark::State& state, bool merge, bool tied_top = false) {
  const int64_t queries = state.range(0);
  SearchParams params;
  params.k = 10;
  const FaissAnswer answer = MakeAnswer(queries, params.k, tied_top);
  for (auto _ : state) {
    std::vector<HitList> hits = internal::ToHitLists(0, queries, params, Metric::kInnerProduct,
                                                     answer.distances, answer.labels);
    if (merge) {
      std::vector<std::vector<HitList>> per_shard;
      per_shard.push_back(std::move(hits));
      hits = MergeTopK(per_shard, params.k, Metric::kInnerProduct);
    }
    benchmark::DoNotOptimize(hits.data());
  }
  state.SetItemsProcessed(state.iterations() * queries);
}

void BM_HitListsFromFaissResults(benchmark::State& state) { HitListsOfOneShard(state, false); }
BENCHMARK(BM_HitListsFromFaissResults)->ArgName("queries")->Arg(1024);

void BM_HitListsThenMergeOfOneShard(benchmark::State& state) { HitListsOfOneShard(state, true); }
BENCHMARK(BM_HitListsThenMergeOfOneShard)->ArgName("queries")->Arg(1024);

// Every list with a tie at the top: the sort that ToHitLists skips for lists already in order.
void BM_HitListsFromFaissResultsWithTies(benchmark::State& state) {
  HitListsOfOneShard(state, false, true);
}
BENCHMARK(BM_HitListsFromFaissResultsWithTies)->ArgName("queries")->Arg(1024);

}  // namespace
}  // namespace probity::index

BENCHMARK_MAIN();
