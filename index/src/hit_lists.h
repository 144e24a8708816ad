// FAISS's flat result arrays (distances and labels, k per query) as Probity's hit lists.
#pragma once

#include <cstdint>
#include <vector>

#include "probity/index/types.h"

namespace probity::index::internal {

// One shard's answer as hit lists: padding (-1) and hits below params.min_score dropped, each
// list sorted by score, then id (FAISS leaves equal scores in arbitrary order; the merge
// contract is score, then id). `distances` and `labels` hold params.k entries per query.
std::vector<HitList> ToHitLists(int shard, int64_t num_queries, const SearchParams& params,
                                Metric metric, const std::vector<float>& distances,
                                const std::vector<int64_t>& labels);

}  // namespace probity::index::internal
