#pragma once

// The collections a process serves locally, each an index generation that can be swapped
// atomically: a search holds a shared_ptr to the generation it started with, so a swap never
// pulls an index out from under it.

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/index/gpu.h"
#include "probity/index/sharded_index.h"

namespace probity::service {

struct LoadedCollection {
  std::string name;
  std::shared_ptr<index::ShardedIndex> index;
  std::string generation;  // the manifest's generation number, as text
  std::filesystem::path generation_dir;
  std::vector<int> held_shards;  // shards loaded here (all, except on shard servers)
};

class Catalog {
 public:
  // `gpu`: the process's GPUs when the config names some; collections are then placed on them.
  explicit Catalog(std::shared_ptr<index::GpuRuntime> gpu = nullptr) : gpu_(std::move(gpu)) {}

  // Loads a generation directory (all shards, or only `shards`), then re-applies the erasures
  // recorded in `erasure_journal` so that an erasure survives restarts and generation swaps.
  // With `gpu`, the held shards are then cloned onto the GPUs; the load is refused, naming
  // needed vs free memory per GPU, when they do not fit next to what the GPUs already hold
  // (during a generation swap: the generation still serving).
  static absl::StatusOr<std::shared_ptr<LoadedCollection>> LoadCollection(
      const std::string& name, const std::filesystem::path& generation_dir,
      const std::vector<int>& shards, const std::filesystem::path& erasure_journal,
      const std::shared_ptr<index::GpuRuntime>& gpu = nullptr);

  // The GPUs collections of this catalog are placed on (null: CPU).
  const std::shared_ptr<index::GpuRuntime>& gpu() const { return gpu_; }

  void Put(std::shared_ptr<LoadedCollection> collection);
  std::shared_ptr<LoadedCollection> Get(const std::string& name) const;
  std::vector<std::shared_ptr<LoadedCollection>> List() const;

 private:
  std::shared_ptr<index::GpuRuntime> gpu_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<LoadedCollection>> collections_;
};

// Ids erased from a collection, one per line, appended before the erasure is applied.
absl::Status AppendErasures(const std::filesystem::path& journal, const std::vector<int64_t>& ids);
absl::StatusOr<std::vector<int64_t>> ReadErasures(const std::filesystem::path& journal);

}  // namespace probity::service
