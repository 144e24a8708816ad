#include "probity/index/evaluation.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace probity::index {

double RecallAtK(const std::vector<HitList>& results, std::span<const int64_t> ground_truth,
                 int truth_k, int k) {
  if (results.empty() || k <= 0) return 0;
  const int depth = std::min(k, truth_k);
  double total = 0;
  for (size_t q = 0; q < results.size(); ++q) {
    const auto truth = ground_truth.subspan(q * truth_k, depth);
    const std::unordered_set<int64_t> exact(truth.begin(), truth.end());
    int found = 0;
    for (size_t r = 0; r < results[q].size() && r < static_cast<size_t>(k); ++r) {
      found += exact.contains(results[q][r].id) ? 1 : 0;
    }
    total += static_cast<double>(found) / depth;
  }
  return total / results.size();
}

double IdentityHitRate(const std::vector<HitList>& results, std::span<const int64_t> gallery_labels,
                       std::span<const int64_t> query_labels, int k) {
  if (results.empty()) return 0;
  int64_t hits = 0;
  for (size_t q = 0; q < results.size(); ++q) {
    for (size_t r = 0; r < results[q].size() && r < static_cast<size_t>(k); ++r) {
      const int64_t id = results[q][r].id;
      if (id >= 0 && id < static_cast<int64_t>(gallery_labels.size()) &&
          gallery_labels[id] == query_labels[q]) {
        ++hits;
        break;
      }
    }
  }
  return static_cast<double>(hits) / results.size();
}

absl::StatusOr<std::vector<EvalRow>> Evaluate(const ShardedIndex& index, const EvalInput& input) {
  const int dim = index.spec().dim;
  const size_t num_queries = input.queries.size() / dim;
  if (num_queries == 0) return absl::InvalidArgumentError("no queries");
  if (input.truth_k < input.k || input.ground_truth.size() != num_queries * input.truth_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ground truth must hold at least k=", input.k, " ids for each of the ", num_queries,
        " queries (it has ", input.truth_k, " per row, ", input.ground_truth.size(), " in all)"));
  }
  const bool labelled = !input.gallery_labels.empty();
  if (labelled && input.query_labels.size() != num_queries) {
    return absl::InvalidArgumentError(
        absl::StrCat(input.query_labels.size(), " query labels for ", num_queries, " queries"));
  }
  std::vector<EvalRow> rows;
  for (int nprobe : input.nprobes) {
    SearchParams params;
    params.k = input.k;
    params.nprobe = nprobe;
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<HitList>> results = index.Search(input.queries, params);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!results.ok()) return results.status();
    EvalRow row;
    row.nprobe = nprobe;
    row.recall = RecallAtK(*results, input.ground_truth, input.truth_k, input.k);
    if (labelled) {
      row.identity_hit_rate =
          IdentityHitRate(*results, input.gallery_labels, input.query_labels, input.k);
    }
    row.queries_per_second = num_queries / std::max(seconds, 1e-9);
    row.milliseconds_per_query = 1000 * seconds / num_queries;
    rows.push_back(row);
  }
  return rows;
}

std::string FormatEvalTable(const std::vector<EvalRow>& rows, int k) {
  std::string out =
      absl::StrFormat("%8s  %10s  %16s  %12s  %10s\n", "nprobe", absl::StrCat("recall@", k),
                      absl::StrCat("identity_hit@", k), "QPS", "ms/query");
  for (const EvalRow& row : rows) {
    const std::string identity = row.identity_hit_rate < 0
                                     ? std::string("-")
                                     : absl::StrFormat("%.4f", row.identity_hit_rate);
    absl::StrAppendFormat(&out, "%8d  %10.4f  %16s  %12.1f  %10.4f\n", row.nprobe, row.recall,
                          identity, row.queries_per_second, row.milliseconds_per_query);
  }
  return out;
}

std::string FormatEvalCsv(const std::vector<EvalRow>& rows, int k) {
  std::string out =
      absl::StrFormat("nprobe,recall_at_%d,identity_hit_at_%d,qps,ms_per_query\n", k, k);
  for (const EvalRow& row : rows) {
    const std::string identity = row.identity_hit_rate < 0
                                     ? std::string("")
                                     : absl::StrFormat("%.6f", row.identity_hit_rate);
    absl::StrAppendFormat(&out, "%d,%.6f,%s,%.3f,%.6f\n", row.nprobe, row.recall, identity,
                          row.queries_per_second, row.milliseconds_per_query);
  }
  return out;
}

}  // namespace probity::index
