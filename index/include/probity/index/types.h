#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace probity::index {

// Inner product on L2-normalized vectors (cosine) is the default for face embeddings.
enum class Metric { kInnerProduct, kL2 };

std::string MetricName(Metric metric);                        // "ip" or "l2"
absl::StatusOr<Metric> ParseMetric(const std::string& name);  // accepts "ip", "l2"

// A collection's index recipe: a FAISS factory spec ("IVF4096,PQ64", "OPQ64,IVF65536,PQ64",
// "IVF1024,PQ32x4fs", "Flat", ...), a metric and a dimension.
struct CollectionSpec {
  std::string factory;
  Metric metric = Metric::kInnerProduct;
  int dim = 0;
};

struct SearchParams {
  int k = 10;
  int nprobe = 1;
  // Inner product: hits scoring below the threshold are dropped. L2: the score is the squared
  // distance and hits farther than the threshold are dropped.
  std::optional<float> min_score;
};

struct Hit {
  int64_t id = -1;
  float score = 0;     // FAISS's value: inner product (higher is better) or squared L2
  uint32_t shard = 0;  // which shard answered
};

// Hits of one query, best first; shorter than k when fewer qualify.
using HitList = std::vector<Hit>;

// True when `a` ranks before `b` under `metric` (score, then id, so merges are deterministic).
bool RanksBefore(const Hit& a, const Hit& b, Metric metric);

// Merges per-shard answers to the same batch of queries into one top-k per query. This is the
// one merge used both in-process and by the gRPC router for remote shards.
// per_shard[s][q] is shard s's hit list for query q.
std::vector<HitList> MergeTopK(const std::vector<std::vector<HitList>>& per_shard, int k,
                               Metric metric);

}  // namespace probity::index
