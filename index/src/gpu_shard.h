#pragma once

// The small interface between ShardedIndex and the GPU code. The implementation is
// gpu_runtime.cpp in a -DPROBITY_GPU=ON build and gpu_unavailable.cpp otherwise, so the rest of
// the index library has no CUDA dependency. Nothing here throws: FAISS and CUDA errors come
// back as absl::Status.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/gpu.h"

namespace faiss {
struct Index;
}

namespace probity::index::internal {

// FAISS's GPU k-selection limit (GPU_MAX_SELECTION_K in 1.7.3): k and nprobe above it are
// refused before the search instead of failing inside FAISS.
inline constexpr int kGpuMaxSelection = 2048;

// The GPU copies of one shard (GpuOptions::copies_per_shard). Every use of a copy holds the
// mutex of the FAISS resources it was cloned with (FAISS GPU indexes and StandardGpuResources
// are not thread-safe); the destructor frees the GPU memory under it too.
class GpuShard {
 public:
  virtual ~GpuShard() = default;
  virtual int device() const = 0;
  // A search with this call's nprobe (per-call parameters, never the index's own nprobe), on
  // whichever copy is free. Safe to call concurrently: up to copies_per_shard searches run at
  // once, the others wait for a copy.
  virtual absl::Status Search(int64_t num_queries, const float* queries, int k, int nprobe,
                              float* distances, int64_t* labels) const = 0;
  // RESOURCE_EXHAUSTED when the device has no room for `n` more vectors in every copy.
  virtual absl::Status CheckRoomToAdd(int64_t n) const = 0;
  // Adds vectors to every GPU copy; call CheckRoomToAdd first. Not concurrent with searches of this
  // shard (ShardedIndex holds its lock exclusively). On an error past the room check, some
  // copies may hold the vectors and others not: the caller re-clones the shard.
  virtual absl::Status Add(int64_t n, const float* vectors, const int64_t* ids) = 0;
  // Drops the GPU copies and clones `cpu` again (after the CPU copy changed in a way the GPU
  // index cannot follow, e.g. removed ids). On error the shard has no GPU copy: Search then
  // answers UNAVAILABLE until the collection is reloaded.
  virtual absl::Status Reclone(const faiss::Index& cpu) = 0;
};

// Clones shards onto the runtime's GPUs, round-robin over its devices in the order of `shards`
// (null entries are placeholders and get no GPU copy), copies_per_shard times each, after
// comparing the estimate of every
// GPU's share with its free memory. All or nothing: on error no GPU copy is kept.
absl::StatusOr<std::vector<std::unique_ptr<GpuShard>>> PlaceShardsOnGpus(
    GpuRuntime& runtime, const std::vector<const faiss::Index*>& shards);

// Trains `index` (an untrained CPU index from CreateIndex) on `device`: the IVF coarse
// quantizer's k-means through a GPU flat index, and the PQ codebooks' k-means too when
// `train_pq`. The index stays a plain CPU index.
absl::Status TrainOnGpu(faiss::Index& index, int64_t n, const float* x, int device, bool train_pq);

}  // namespace probity::index::internal
