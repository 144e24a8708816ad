#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/types.h"

namespace faiss {
struct Index;
}

namespace probity::index {

class GpuRuntime;

struct TrainOptions {
  // FAISS's verbose training log on stdout (k-means iterations, PQ slices), which
  // `probity build` turns into a progress bar.
  bool faiss_verbose = false;
  // CUDA device that runs the coarse quantizer's k-means (a GPU flat index as the clustering
  // index, FAISS's billion-scale recipe); -1 trains on the CPU. Needs a GPU build.
  int gpu_device = -1;
  // Also run the PQ codebooks' k-means on that GPU.
  bool gpu_train_pq = false;
};

// A trained index split into S shards that share one coarse quantizer and PQ codebooks, so
// that MergeTopK over the shards equals the top-k of one unsharded index with the same data.
// Vector i goes to shard ShardOf(id). Searches may run concurrently with each other; Add and
// Remove take an exclusive lock. All FAISS exceptions are turned into absl::Status here.
class ShardedIndex {
 public:
  // Trains the spec on `sample` (n x dim, row-major) and makes `num_shards` empty shards.
  static absl::StatusOr<std::unique_ptr<ShardedIndex>> Train(const CollectionSpec& spec,
                                                             std::span<const float> sample,
                                                             int num_shards);
  // The same, with FAISS's verbose training log on stdout (k-means iterations, PQ slices), which
  // `probity build` turns into a progress bar.
  static absl::StatusOr<std::unique_ptr<ShardedIndex>> Train(const CollectionSpec& spec,
                                                             std::span<const float> sample,
                                                             int num_shards, bool faiss_verbose);
  // The same with every training option; the result is always a plain CPU index.
  static absl::StatusOr<std::unique_ptr<ShardedIndex>> Train(const CollectionSpec& spec,
                                                             std::span<const float> sample,
                                                             int num_shards,
                                                             const TrainOptions& options);

  ~ShardedIndex();
  ShardedIndex(const ShardedIndex&) = delete;
  ShardedIndex& operator=(const ShardedIndex&) = delete;

  // Adds vectors (ids.size() x dim) with the caller's 64-bit ids. Ids erased earlier are
  // refused (they stay erased). Callers stream large inputs through this in chunks.
  absl::Status Add(std::span<const float> vectors, std::span<const int64_t> ids);

  // Clones every held shard onto the runtime's GPUs (round-robin over its devices), after
  // checking that each GPU has room for what it gets (RESOURCE_EXHAUSTED naming needed vs free
  // per GPU otherwise; nothing is placed then). From then on searches run on the GPU copies;
  // Add adds to both copies; Remove removes from the CPU copy and re-clones the shard. Called
  // once, before the index is shared with searching threads.
  absl::Status PlaceOnGpus(std::shared_ptr<GpuRuntime> runtime);
  // The CUDA device a shard is searched on, or -1 for the CPU.
  int ShardDevice(int shard) const;

  // Searches every shard and merges. queries: nq x dim.
  absl::StatusOr<std::vector<HitList>> Search(std::span<const float> queries,
                                              const SearchParams& params) const;

  // True when Search computes the coarse assignment (the nprobe lists of each query) once per
  // batch and scans every shard's lists with it (IndexIVF::search_preassigned), instead of
  // repeating the coarse search per shard. That needs two or more loaded CPU shards whose coarse
  // quantizers and pre-transforms are byte for byte identical (shards of one training are):
  // checked at load with a SHA-256 of each shard's serialized quantizer and pre-transform.
  // Results are the same ids and scores as per-shard searches.
  bool SharesCoarseAssignment() const;
  // Turns the shared assignment off (or back on where the quantizers allow it), for benchmarks
  // and tests that compare it with per-shard searches. On by default.
  void SetShareCoarseAssignment(bool share);

  // Searches one shard only (what a shard server runs for the router).
  absl::StatusOr<std::vector<HitList>> SearchShard(int shard, std::span<const float> queries,
                                                   const SearchParams& params) const;
  // Searches the listed shards (each held here) and answers per shard, in the order listed,
  // with one coarse assignment for all of them where SharesCoarseAssignment() allows: what a
  // process holding several shards of a collection runs to search them together on one thread.
  // GPU shards each take the whole batch, the shards in parallel, as in Search.
  absl::StatusOr<std::vector<std::vector<HitList>>> SearchShards(std::span<const int> shards,
                                                                 std::span<const float> queries,
                                                                 const SearchParams& params) const;

  // Erases ids from the live shards and remembers them so that they never come back
  // (persisted with the generation). Returns how many stored vectors were removed.
  absl::StatusOr<int64_t> Remove(std::span<const int64_t> ids);

  const CollectionSpec& spec() const;
  int num_shards() const;
  // Shard of an id: a fixed 64-bit mix of the id modulo num_shards(), so consecutive ids spread
  // evenly and every process (builder, router, shard server) agrees without a lookup table.
  int ShardOf(int64_t id) const;
  // False for the placeholders of shards another server holds (LoadGenerationShards).
  bool HasShard(int shard) const;
  int64_t ShardSize(int shard) const;
  int64_t TotalSize() const;
  const std::vector<int64_t>& erased_ids() const;

  // The FAISS index of one shard (for tests comparing against FAISS called directly, and for
  // writing generations). Not synchronized: callers must not Add/Remove concurrently.
  const faiss::Index& shard_index(int shard) const;

  // Builds from already-loaded shards (used by the generation loader). Takes ownership.
  static absl::StatusOr<std::unique_ptr<ShardedIndex>> FromShards(
      const CollectionSpec& spec, std::vector<std::unique_ptr<faiss::Index>> shards,
      std::vector<int64_t> erased_ids);

 private:
  ShardedIndex() = default;
  // SearchShard without taking mutex_ (Search holds it once across all shards).
  absl::StatusOr<std::vector<HitList>> SearchShardLocked(int shard, std::span<const float> queries,
                                                         const SearchParams& params) const;
  bool SharesCoarseAssignmentLocked() const;
  // One block of Search on the CPU: each loaded shard searched on its own.
  absl::StatusOr<std::vector<std::vector<HitList>>> SearchEachShardLocked(
      const std::vector<int>& loaded, std::span<const float> queries,
      const SearchParams& params) const;
  // The same with one coarse assignment for all loaded shards (SharesCoarseAssignment).
  absl::StatusOr<std::vector<std::vector<HitList>>> SearchSharedAssignmentLocked(
      const std::vector<int>& loaded, std::span<const float> queries,
      const SearchParams& params) const;
  // The GPU shards' answers: the whole batch per shard, shards in parallel.
  absl::StatusOr<std::vector<std::vector<HitList>>> SearchGpuShardsLocked(
      const std::vector<int>& loaded, std::span<const float> queries,
      const SearchParams& params) const;
  struct State;
  std::unique_ptr<State> state_;
  mutable std::shared_mutex mutex_;
};

}  // namespace probity::index
