#include "probity/service/catalog.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "probity/index/generation.h"

namespace probity::service {

absl::StatusOr<std::shared_ptr<LoadedCollection>> Catalog::LoadCollection(
    const std::string& name, const std::filesystem::path& generation_dir,
    const std::vector<int>& shards, const std::filesystem::path& erasure_journal,
    const std::shared_ptr<index::GpuRuntime>& gpu) {
  auto manifest = index::ReadManifest(generation_dir);
  if (!manifest.ok()) return manifest.status();
  absl::StatusOr<std::unique_ptr<index::ShardedIndex>> loaded =
      shards.empty() ? index::LoadGeneration(generation_dir)
                     : index::LoadGenerationShards(generation_dir, shards);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("collection ", name, ": ", loaded.status().message()));
  }
  auto collection = std::make_shared<LoadedCollection>();
  collection->name = name;
  collection->index = std::shared_ptr<index::ShardedIndex>(std::move(*loaded));
  collection->generation = std::to_string(manifest->generation);
  collection->generation_dir = generation_dir;
  if (shards.empty()) {
    collection->held_shards.resize(collection->index->num_shards());
    std::iota(collection->held_shards.begin(), collection->held_shards.end(), 0);
  } else {
    collection->held_shards = shards;
  }
  auto erased = ReadErasures(erasure_journal);
  if (!erased.ok()) return erased.status();
  if (!erased->empty()) {
    auto removed = collection->index->Remove(*erased);
    if (!removed.ok()) return removed.status();
  }
  // Placed after the erasures so that the GPU copies are cloned once, without erased vectors.
  if (gpu != nullptr) {
    if (absl::Status placed = collection->index->PlaceOnGpus(gpu); !placed.ok()) {
      return absl::Status(placed.code(), absl::StrCat("collection ", name, ": ", placed.message()));
    }
  }
  return collection;
}

void Catalog::Put(std::shared_ptr<LoadedCollection> collection) {
  std::lock_guard lock(mutex_);
  collections_[collection->name] = std::move(collection);
}

std::shared_ptr<LoadedCollection> Catalog::Get(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = collections_.find(name);
  return it == collections_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<LoadedCollection>> Catalog::List() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<LoadedCollection>> out;
  for (const auto& [name, collection] : collections_) out.push_back(collection);
  return out;
}

absl::Status AppendErasures(const std::filesystem::path& journal, const std::vector<int64_t>& ids) {
  std::error_code ec;
  std::filesystem::create_directories(journal.parent_path(), ec);
  FILE* file = std::fopen(journal.c_str(), "a");
  if (file == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot open erasure journal ", journal.string()));
  }
  bool ok = true;
  for (int64_t id : ids) ok = ok && std::fprintf(file, "%lld\n", static_cast<long long>(id)) > 0;
  ok = ok && std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  ok = std::fclose(file) == 0 && ok;
  if (!ok) {
    return absl::UnavailableError(absl::StrCat("cannot write erasure journal ", journal.string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ReadErasures(const std::filesystem::path& journal) {
  std::vector<int64_t> ids;
  if (journal.empty() || !std::filesystem::exists(journal)) return ids;
  std::ifstream in(journal);
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    try {
      size_t used = 0;
      ids.push_back(std::stoll(line, &used));
      if (used != line.size()) throw std::invalid_argument(line);
    } catch (const std::exception&) {
      return absl::DataLossError(
          absl::StrCat(journal.string(), ":", line_number, ": not an id: ", line));
    }
  }
  return ids;
}

}  // namespace probity::service
