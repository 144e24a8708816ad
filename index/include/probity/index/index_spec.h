#pragma once

// What a FAISS factory spec builds, checked before anything is trained, and what it costs in
// host memory. Billion-scale specs such as "IVF1048576_HNSW32,PQ64" take hours to train, so a
// spec that cannot work (unknown, a PQ that does not divide the dimension, too few training
// vectors for its lists) is refused up front with a message that says why.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/types.h"

namespace probity::index {

// FAISS's k-means wants at least this many training points per centroid
// (ClusteringParameters::min_points_per_centroid) and warns below it; Probity refuses.
inline constexpr int64_t kMinTrainingPointsPerList = 39;

enum class CoarseQuantizerKind {
  kNone,   // no inverted lists (e.g. "Flat")
  kFlat,   // "IVF65536,...": exact search over the centroids
  kHnsw,   // "IVF1048576_HNSW32,...": an HNSW graph over the centroids
  kOther,  // any other coarse quantizer FAISS accepts
};

struct SpecShape {
  int dim = 0;      // input dimension
  int ivf_dim = 0;  // dimension the IVF sees, after any pre-transform (OPQ, PCA)
  bool has_pre_transform = false;
  int64_t nlist = 0;  // inverted lists; 0 without IVF
  CoarseQuantizerKind coarse = CoarseQuantizerKind::kNone;
  int hnsw_m = 0;                  // HNSW coarse quantizer: neighbours per node above level 0
  int64_t code_size = 0;           // bytes stored per vector (without the id)
  int pq_m = 0;                    // IVF-PQ: sub-quantizers
  int pq_nbits = 0;                // IVF-PQ: bits per sub-quantizer code
  bool precomputed_table = false;  // IVF-PQ, L2, by residual, table within FAISS's 2 GiB cap
};

// Builds the untrained index once and reads its shape. INVALID_ARGUMENT, naming the spec, when
// FAISS does not know the spec or a PQ's sub-quantizer count does not divide the dimension.
absl::StatusOr<SpecShape> InspectSpec(const CollectionSpec& spec);

// INVALID_ARGUMENT when `training_rows` is below kMinTrainingPointsPerList x nlist.
absl::Status CheckTrainingSize(const CollectionSpec& spec, const SpecShape& shape,
                               int64_t training_rows);

// Expected bytes of one node of FAISS's HNSW graph with M neighbours: 2M level-0 neighbours,
// M per upper level (a node reaches level l with probability M^-l, so M/(M-1) more on
// average), 4 bytes each, plus its level (int32) and its offset into the neighbour table
// (size_t).
double HnswBytesPerNode(int m);

// Host memory of a collection of `num_vectors` vectors in `num_shards` CPU shards, as loaded
// from a generation (an index being filled by Add may hold up to twice its lists' payload in
// std::vector spare capacity). Every shard holds its own copy of the coarse quantizer, PQ
// codebooks and precomputed tables.
struct CpuMemoryEstimate {
  // The whole collection.
  int64_t codes = 0;  // code_size per vector (4 x dim for Flat)
  int64_t ids = 0;    // 8 bytes per vector
  // Each shard.
  int64_t coarse_quantizer = 0;   // float32 centroids, plus the HNSW graph
  int64_t inverted_lists = 0;     // two empty std::vector per list (48 bytes)
  int64_t pq_codebooks = 0;       // ksub x ivf_dim floats
  int64_t precomputed_table = 0;  // nlist x pq_m x ksub floats (IVF-PQ with L2 only)
  int num_shards = 1;

  int64_t per_shard() const {
    return coarse_quantizer + inverted_lists + pq_codebooks + precomputed_table;
  }
  int64_t total() const { return codes + ids + num_shards * per_shard(); }
};

CpuMemoryEstimate EstimateCpuMemory(const SpecShape& shape, int64_t num_vectors, int num_shards);

}  // namespace probity::index
