#include "hit_lists.h"

#include <algorithm>

namespace probity::index::internal {
namespace {

bool Qualifies(float score, const SearchParams& params, Metric metric) {
  if (!params.min_score) return true;
  return metric == Metric::kL2 ? score <= *params.min_score : score >= *params.min_score;
}

}  // namespace

std::vector<HitList> ToHitLists(int shard, int64_t num_queries, const SearchParams& params,
                                Metric metric, const std::vector<float>& distances,
                                const std::vector<int64_t>& labels) {
  const size_t k = static_cast<size_t>(params.k);
  std::vector<HitList> hits(num_queries);
  for (int64_t q = 0; q < num_queries; ++q) {
    // One allocation per list instead of the log2(k) a growing vector makes; at a GPU's
    // 500k queries/s they were measurable (bench/index, BM_HitListsFromFaissResults).
    hits[q].reserve(k);
    for (size_t r = 0; r < k; ++r) {
      const int64_t id = labels[q * k + r];
      const float score = distances[q * k + r];
      if (id < 0 || !Qualifies(score, params, metric)) continue;
      hits[q].push_back(Hit{id, score, static_cast<uint32_t>(shard)});
    }
    // FAISS returns each list ranked by score already; only equal scores may need their ids
    // put in order, so the check (k - 1 comparisons) usually saves the sort.
    const auto ranks_before = [metric](const Hit& a, const Hit& b) {
      return RanksBefore(a, b, metric);
    };
    if (!std::is_sorted(hits[q].begin(), hits[q].end(), ranks_before)) {
      std::sort(hits[q].begin(), hits[q].end(), ranks_before);
    }
  }
  return hits;
}

}  // namespace probity::index::internal
