#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/sharded_index.h"

namespace probity::index {

// manifest.json of a generation directory (the shard file contract in docs/ARCHITECTURE.md).
struct ShardFile {
  std::string file;  // relative to the generation directory, e.g. "shard-0003.faissindex"
  int64_t count = 0;
  std::string sha256;  // lowercase hex
};

struct Manifest {
  CollectionSpec spec;
  int64_t generation = 0;
  std::string created_at;  // RFC 3339 UTC
  std::vector<ShardFile> shards;
  std::string erased_file;  // file listing erased ids (may be empty)
  std::string erased_sha256;
};

// Writes `index` as generation directory `dir` atomically: files go to a temporary sibling
// directory that is renamed into place only when complete, so an existing generation is never
// left half-written.
absl::Status WriteGeneration(const ShardedIndex& index, int64_t generation,
                             const std::filesystem::path& dir);

// Reads and checks manifest.json: every file's SHA-256 must match; an error names the file.
absl::StatusOr<Manifest> ReadManifest(const std::filesystem::path& dir);

// Loads and verifies a whole generation.
absl::StatusOr<std::unique_ptr<ShardedIndex>> LoadGeneration(const std::filesystem::path& dir);

// Loads and verifies only some shards (a shard server's share); the other shards are empty
// placeholders that answer nothing.
absl::StatusOr<std::unique_ptr<ShardedIndex>> LoadGenerationShards(const std::filesystem::path& dir,
                                                                   const std::vector<int>& shards);

}  // namespace probity::index
