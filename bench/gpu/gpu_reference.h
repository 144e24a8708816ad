#pragma once

// FAISS GPU called in-process, the reference the GPU benchmark measures Probity against: a
// faiss::gpu::GpuIndexIVFPQ trained and filled on the GPU (FAISS's own fast path for a large
// gallery), with the options Probity's GPU shards use (float16 lookup tables, 64-bit ids on the
// GPU), and copied to the CPU once to become Probity's generation. Only a build whose FAISS has
// its GPU module implements it (gpu_reference.cpp); otherwise gpu_reference_unavailable.cpp
// says so and the benchmark runs its CPU parts.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/sharded_index.h"
#include "probity/index/types.h"

namespace probity::bench {

// True when this binary can run FAISS GPU (a PROBITY_GPU build linked with FAISS's GPU module).
bool GpuReferenceAvailable();

// The device's name from cudaGetDeviceProperties, e.g. "NVIDIA H100 80GB HBM3".
std::string GpuName(int device);

class FaissGpuReference {
 public:
  // Trains an IVF-PQ spec ("IVF16384,PQ64") on the GPU. Only IVF<n>,PQ<m> specs are accepted.
  static absl::StatusOr<std::unique_ptr<FaissGpuReference>> Train(const index::CollectionSpec& spec,
                                                                  std::span<const float> sample,
                                                                  int device);
  virtual ~FaissGpuReference() = default;

  virtual absl::Status Add(std::span<const float> vectors, std::span<const int64_t> ids) = 0;
  // Ids of the top k, queries.size() / dim rows of k.
  virtual absl::StatusOr<std::vector<int64_t>> Search(std::span<const float> queries, int k,
                                                      int nprobe) = 0;
  // A one-shard Probity collection holding a CPU copy of this index.
  virtual absl::StatusOr<std::unique_ptr<index::ShardedIndex>> ToShardedIndex(
      const index::CollectionSpec& spec) const = 0;
};

}  // namespace probity::bench
