#pragma once

// What WriteGeneration (a whole index in memory) and AssembleGeneration (shard files built by
// separate steps) share: shard file names, fsync of files and directories, and the atomic
// publication of a generation directory with its manifest.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/generation.h"

namespace probity::index::internal {

// "shard-0003.faissindex".
std::string ShardFileName(int shard);

// Puts every shard's file into `staging` (an owner-only directory on the target's file system)
// and returns their manifest entries, in shard order.
using StageShards =
    std::function<absl::StatusOr<std::vector<ShardFile>>(const std::filesystem::path& staging)>;

// Writes generation directory `dir` atomically: a temporary sibling gets the shard files
// (`stage_shards`), the erasure list and manifest.json, everything owner-only and fsynced, and
// is then renamed into place (an existing generation is swapped out and deleted), so `dir`
// always names a complete generation.
absl::Status PublishGeneration(const CollectionSpec& spec, int64_t generation,
                               const std::vector<int64_t>& erased_ids,
                               const StageShards& stage_shards, const std::filesystem::path& dir);

}  // namespace probity::index::internal
