#pragma once

// Quality measures of approximate search against exact ground truth, shared by `probity eval`,
// tests and benchmarks.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/index/sharded_index.h"

namespace probity::index {

// Mean over queries of |approximate top-k ∩ exact top-k| / k. ground_truth holds
// truth_k >= k ids per query, best first.
double RecallAtK(const std::vector<HitList>& results, std::span<const int64_t> ground_truth,
                 int truth_k, int k);

// Fraction of queries with at least one hit of the query's own identity among the first k.
// gallery_labels[id] is the identity of gallery id `id`; ids outside it count as misses.
double IdentityHitRate(const std::vector<HitList>& results, std::span<const int64_t> gallery_labels,
                       std::span<const int64_t> query_labels, int k);

struct EvalRow {
  int nprobe = 0;
  double recall = 0;
  double identity_hit_rate = -1;  // -1 when no labels were given
  double queries_per_second = 0;
  double milliseconds_per_query = 0;
};

struct EvalInput {
  std::span<const float> queries;
  std::span<const int64_t> ground_truth;
  int truth_k = 0;
  std::span<const int64_t> gallery_labels;  // empty: no identity measure
  std::span<const int64_t> query_labels;
  int k = 10;
  std::vector<int> nprobes;
};

// Searches the whole query set once per nprobe (one batch, so QPS is batch throughput).
absl::StatusOr<std::vector<EvalRow>> Evaluate(const ShardedIndex& index, const EvalInput& input);

// The table printed by `probity eval` and the same rows as CSV.
std::string FormatEvalTable(const std::vector<EvalRow>& rows, int k);
std::string FormatEvalCsv(const std::vector<EvalRow>& rows, int k);

}  // namespace probity::index
