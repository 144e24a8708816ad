#include "probity/index/types.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace probity::index {

std::string MetricName(Metric metric) { return metric == Metric::kL2 ? "l2" : "ip"; }

absl::StatusOr<Metric> ParseMetric(const std::string& name) {
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "l2") return Metric::kL2;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric '", name, "' (expected 'ip' or 'l2')"));
}

bool RanksBefore(const Hit& a, const Hit& b, Metric metric) {
  if (a.score != b.score) {
    return metric == Metric::kL2 ? a.score < b.score : a.score > b.score;
  }
  return a.id < b.id;
}

std::vector<HitList> MergeTopK(const std::vector<std::vector<HitList>>& per_shard, int k,
                               Metric metric) {
  size_t num_queries = 0;
  for (const auto& shard : per_shard) num_queries = std::max(num_queries, shard.size());
  const auto before = [metric](const Hit& a, const Hit& b) { return RanksBefore(a, b, metric); };
  std::vector<HitList> merged(num_queries);
  for (size_t q = 0; q < num_queries; ++q) {
    HitList& out = merged[q];
    for (const auto& shard : per_shard) {
      if (q < shard.size()) out.insert(out.end(), shard[q].begin(), shard[q].end());
    }
    const size_t keep = std::min(out.size(), static_cast<size_t>(std::max(k, 0)));
    std::partial_sort(out.begin(), out.begin() + keep, out.end(), before);
    out.resize(keep);
  }
  return merged;
}

}  // namespace probity::index
