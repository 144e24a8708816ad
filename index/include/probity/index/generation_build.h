#pragma once

// Building a generation in steps that a cluster can run on separate machines:
//
//   1. TrainGeneration: train once on an evenly strided sample of the input; writes the
//      trained, empty index and build.json (the spec, the shard count and the input's shape)
//      into a work directory.
//   2. BuildShard(i): shard i of S streams the whole input in chunks and adds the rows whose id
//      belongs to shard i (ShardedIndex::ShardOf, the same rule the router and erasure use).
//      Peak memory is one chunk plus that shard's codes. The shard file is written under a
//      temporary name, fsynced and renamed; a small record (shard-NNNN.json) naming its
//      SHA-256 and the trained index it came from is written last, so a rerun skips a shard
//      whose finished file verifies and rebuilds anything else.
//   3. AssembleGeneration: checks every shard against build.json and publishes the generation
//      directory (manifest.json with each shard's SHA-256) atomically; shard files are
//      hard-linked from the work directory (copied across file systems).
//
// BuildGeneration runs the three steps on one machine with a number of worker threads. The
// work directory and everything in it are owner-only, like the generation.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/sharded_index.h"
#include "probity/index/types.h"

namespace probity::index {

// Where the vectors and their ids come from.
struct BuildInput {
  std::filesystem::path vectors;  // .fvecs, .bvecs, .fbin, .u8bin or float32 .npy
  std::filesystem::path ids;      // optional: one id per row (.ibin/.ivecs/int .npy)
  int64_t first_id = 0;           // without `ids`: row r gets id first_id + r
  bool normalize = false;         // scale every row to unit length
};

// Step 1's request. The dimension comes from the input.
struct TrainRequest {
  BuildInput input;
  std::string factory = "IVF1024,PQ64";
  Metric metric = Metric::kInnerProduct;
  int num_shards = 1;
  int64_t train_size = 100000;  // sample rows, evenly strided over the input
  int64_t chunk_rows = 65536;   // rows per read while sampling
  TrainOptions train_options;
  // Called with the sample's row count just before FAISS trains; the returned object is
  // destroyed when training ends (the CLI turns FAISS's verbose log into a progress line this
  // way). May be empty.
  std::function<std::shared_ptr<void>(int64_t sample_rows)> around_training;
};

// build.json: what every later step checks its inputs against.
struct BuildSpec {
  CollectionSpec spec;
  int num_shards = 0;
  BuildInput input;
  int64_t input_rows = 0;
  // The vectors file as training saw it: a rerun reuses the work directory only when the
  // file still has this size and modification time.
  int64_t input_bytes = 0;
  int64_t input_mtime_ns = 0;
  // The same for the ids file, when there is one (0 otherwise).
  int64_t ids_bytes = 0;
  int64_t ids_mtime_ns = 0;
  int64_t train_rows = 0;      // rows in the sample the index was trained on
  std::string trained_file;    // relative to the work directory
  std::string trained_sha256;  // lowercase hex
  std::string sha256;          // of build.json itself; every shard record names it
};

// One finished shard (shard-NNNN.json beside its file).
struct ShardRecord {
  int shard = 0;
  int num_shards = 0;
  std::string file;  // relative to the work directory
  int64_t count = 0;
  std::string sha256;
  std::string build_sha256;  // SHA-256 of the build.json it was built for (binds the trained
                             // index, the spec and the input)
};

struct StepOptions {
  std::ostream* progress = nullptr;  // progress bars and step messages, when set
  int64_t chunk_rows = 65536;        // rows read and added per step
  // Overrides for where this machine sees the input (a cluster may mount it elsewhere); its
  // rows and dimension must still match build.json. Empty: the paths in build.json.
  std::filesystem::path vectors;
  std::filesystem::path ids;
};

// Step 1. Reuses a work directory whose build.json asks for exactly the same build and whose
// trained index verifies (a rerun does not train again); refuses one that holds another build.
absl::StatusOr<BuildSpec> TrainGeneration(const TrainRequest& request,
                                          const std::filesystem::path& work_dir,
                                          const StepOptions& options = {});

// Reads build.json and checks the trained index's SHA-256 (DATA_LOSS when it differs).
absl::StatusOr<BuildSpec> ReadBuildSpec(const std::filesystem::path& work_dir);

struct ShardBuildResult {
  ShardRecord record;
  bool reused = false;  // the finished shard verified and was left untouched
};

// Step 2 for shard `shard` (0-based). Refuses a trained index that does not match build.json
// or the spec (wrong SHA-256, dimension, untrained or not empty), and input whose shape
// differs from build.json; bad rows are reported with their file and offset. On any failure
// the work directory keeps what it had (finished shards, the trained index).
absl::StatusOr<ShardBuildResult> BuildShard(const std::filesystem::path& work_dir, int shard,
                                            const StepOptions& options = {});

// Step 3. Refuses a missing shard, a shard whose file does not match its record, a shard built
// from another trained index or for another shard count, and shard counts that do not add up
// to the input's rows. The work directory is left as it was.
absl::Status AssembleGeneration(const std::filesystem::path& work_dir, int64_t generation,
                                const std::filesystem::path& output,
                                const StepOptions& options = {});

struct BuildGenerationOptions {
  TrainRequest train;
  int64_t generation = 1;
  std::filesystem::path output;
  // Shard builds running at once; each gets an equal share of the OpenMP threads.
  int workers = 1;
  // Empty: ".<output name>.build" beside the output. Kept after a failure so that a rerun
  // resumes (finished shards are not rebuilt); removed after success unless keep_work_dir.
  std::filesystem::path work_dir;
  bool keep_work_dir = false;
  StepOptions steps;
};

// The work directory BuildGeneration uses for `options`.
std::filesystem::path DefaultWorkDir(const std::filesystem::path& output);

// Steps 1-3 on this machine; returns the build's spec (its input rows are the generation's
// vector count).
absl::StatusOr<BuildSpec> BuildGeneration(const BuildGenerationOptions& options);

// The same build for rows a caller already holds in memory (the demo's synthetic gallery, test
// and benchmark fixtures), without a work directory: train on the evenly strided sample of
// min(train_size, rows) rows that TrainGeneration would take, add every row under its id, and
// write generation `generation` to `output` (WriteGeneration). The generation equals the one
// BuildGeneration makes from the same rows in a file.
struct InMemoryBuildOptions {
  CollectionSpec spec;
  int num_shards = 1;
  std::span<const float> vectors;  // row-major, spec.dim floats per row
  std::span<const int64_t> ids;    // one per row
  int64_t train_size = 100000;     // at least the row count: train on every row
  int64_t generation = 1;
  std::filesystem::path output;
};

// Returns the built index too, for callers that also search it in memory. INVALID_ARGUMENT
// when the rows, ids or sizes do not fit together.
absl::StatusOr<std::unique_ptr<ShardedIndex>> BuildGeneration(const InMemoryBuildOptions& options);

}  // namespace probity::index
