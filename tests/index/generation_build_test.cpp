// The generation build in steps (train, build-shard, assemble) against the one-call build and
// the in-memory path, reruns after a killed shard, and the refusals of each step.
#include "probity/index/generation_build.h"

#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "faiss_search.h"
#include "probity/index/embedding_io.h"
#include "probity/index/generation.h"
#include "test_data.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const bool kSingleThreaded = testing::UseOneThread();
constexpr int kDim = 16;
constexpr int64_t kRows = 3000;
constexpr int kShards = 3;
constexpr char kSpec[] = "IVF16,PQ4";

struct Fixture {
  testing::ScratchDir scratch;
  fs::path input = scratch.path() / "gallery.fbin";
  std::vector<float> rows = testing::RandomRows(kRows, kDim, 7);
  Fixture() { EXPECT_TRUE(WriteFloatMatrix(input, kDim, rows).ok()); }

  TrainRequest Request() const {
    TrainRequest request;
    request.input.vectors = input;
    request.input.first_id = 1000;
    request.factory = kSpec;
    request.num_shards = kShards;
    request.train_size = 700;  // a sparse sample: read row by row, by offset
    request.chunk_rows = 512;
    return request;
  }
  StepOptions Steps() const {
    StepOptions steps;
    steps.chunk_rows = 512;
    return steps;
  }
};

// Every stored id of one shard, in list order.
std::vector<int64_t> ShardIds(const ShardedIndex& index, int shard) {
  const faiss::IndexIVF* ivf = internal::FindIvf(index.shard_index(shard));
  std::vector<int64_t> ids;
  for (size_t list = 0; list < ivf->nlist; ++list) {
    const size_t size = ivf->invlists->list_size(list);
    const faiss::Index::idx_t* list_ids = ivf->invlists->get_ids(list);
    ids.insert(ids.end(), list_ids, list_ids + size);
    ivf->invlists->release_ids(list, list_ids);
  }
  return ids;
}

std::vector<HitList> SearchAll(const ShardedIndex& index, const std::vector<float>& queries) {
  SearchParams params;
  params.k = 10;
  params.nprobe = 16;  // every list: results depend only on the stored codes
  auto hits = index.Search(queries, params);
  EXPECT_TRUE(hits.ok()) << hits.status();
  return hits.ok() ? *hits : std::vector<HitList>{};
}

void ExpectSameGeneration(const fs::path& a, const fs::path& b) {
  auto left = LoadGeneration(a);
  auto right = LoadGeneration(b);
  ASSERT_TRUE(left.ok()) << left.status();
  ASSERT_TRUE(right.ok()) << right.status();
  ASSERT_EQ((*left)->num_shards(), (*right)->num_shards());
  for (int s = 0; s < (*left)->num_shards(); ++s) {
    EXPECT_EQ(ShardIds(**left, s), ShardIds(**right, s)) << "shard " << s;
  }
  const std::vector<float> queries = testing::RandomRows(20, kDim, 99);
  const auto hits_left = SearchAll(**left, queries);
  const auto hits_right = SearchAll(**right, queries);
  ASSERT_EQ(hits_left.size(), hits_right.size());
  for (size_t q = 0; q < hits_left.size(); ++q) {
    ASSERT_EQ(hits_left[q].size(), hits_right[q].size());
    for (size_t r = 0; r < hits_left[q].size(); ++r) {
      EXPECT_EQ(hits_left[q][r].id, hits_right[q][r].id);
      EXPECT_EQ(hits_left[q][r].score, hits_right[q][r].score);
    }
  }
}

struct FileStamp {
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return FileStamp{info.st_ino,
                   static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec};
}

std::string ShardName(int shard) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%04d", shard);
  return name;
}

void FlipByte(const fs::path& path, int64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char byte = 0;
  file.get(byte);
  file.seekp(offset);
  file.put(static_cast<char>(byte ^ 0x01));
}

absl::Status RunSteps(const Fixture& f, const fs::path& work, const fs::path& output) {
  auto build = TrainGeneration(f.Request(), work, f.Steps());
  if (!build.ok()) return build.status();
  for (int s = 0; s < kShards; ++s) {
    auto shard = BuildShard(work, s, f.Steps());
    if (!shard.ok()) return shard.status();
  }
  return AssembleGeneration(work, 4, output, f.Steps());
}

TEST(GenerationBuildTest, StepsEqualTheOneCallBuildAndTheInMemoryBuild) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(RunSteps(f, work, f.scratch.path() / "steps").ok());

  BuildGenerationOptions options;
  options.train = f.Request();
  options.output = f.scratch.path() / "one-call";
  options.generation = 4;
  options.workers = 2;
  options.steps = f.Steps();
  auto built = BuildGeneration(options);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->input_rows, kRows);
  EXPECT_FALSE(fs::exists(DefaultWorkDir(options.output))) << "removed after success";
  ExpectSameGeneration(f.scratch.path() / "steps", options.output);

  // The in-memory build of the same rows: the same strided sample, every row added, written.
  const std::vector<int64_t> ids = testing::SequentialIds(kRows, 1000);
  InMemoryBuildOptions memory;
  memory.spec = {kSpec, Metric::kInnerProduct, kDim};
  memory.num_shards = kShards;
  memory.vectors = f.rows;
  memory.ids = ids;
  memory.train_size = 700;
  memory.generation = 4;
  memory.output = f.scratch.path() / "memory";
  auto in_memory = BuildGeneration(memory);
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();
  EXPECT_EQ((*in_memory)->num_shards(), kShards);
  ExpectSameGeneration(f.scratch.path() / "steps", memory.output);

  auto manifest = ReadManifest(f.scratch.path() / "steps");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->generation, 4);
  int64_t total = 0;
  for (const ShardFile& shard : manifest->shards) total += shard.count;
  EXPECT_EQ(total, kRows);
}

// What the demo, the server tests and the server benchmark built by hand before they called
// BuildGeneration: train on every row, add them all, write. The in-memory build with a sample
// of at least the row count gives exactly that generation, and returns the index it wrote.
TEST(GenerationBuildTest, InMemoryBuildOfEveryRowEqualsTrainAddWrite) {
  Fixture f;
  const CollectionSpec spec{kSpec, Metric::kInnerProduct, kDim};
  const std::vector<int64_t> ids = testing::SequentialIds(kRows, 1000);
  auto by_hand = ShardedIndex::Train(spec, f.rows, kShards);
  ASSERT_TRUE(by_hand.ok()) << by_hand.status();
  ASSERT_TRUE((*by_hand)->Add(f.rows, ids).ok());
  ASSERT_TRUE(WriteGeneration(**by_hand, 1, f.scratch.path() / "by-hand").ok());

  InMemoryBuildOptions options;
  options.spec = spec;
  options.num_shards = kShards;
  options.vectors = f.rows;
  options.ids = ids;
  options.train_size = kRows * 2;
  options.output = f.scratch.path() / "built";
  auto built = BuildGeneration(options);
  ASSERT_TRUE(built.ok()) << built.status();
  ExpectSameGeneration(f.scratch.path() / "by-hand", options.output);
  auto by_hand_manifest = ReadManifest(f.scratch.path() / "by-hand");
  auto built_manifest = ReadManifest(options.output);
  ASSERT_TRUE(by_hand_manifest.ok() && built_manifest.ok());
  ASSERT_EQ(by_hand_manifest->shards.size(), built_manifest->shards.size());
  for (size_t s = 0; s < built_manifest->shards.size(); ++s) {
    EXPECT_EQ(by_hand_manifest->shards[s].sha256, built_manifest->shards[s].sha256) << s;
  }
  // The returned index is the one written.
  for (int s = 0; s < kShards; ++s) {
    EXPECT_EQ((*built)->ShardSize(s), built_manifest->shards[s].count) << s;
  }
  const std::vector<float> queries = testing::RandomRows(5, kDim, 3);
  const auto hits_returned = SearchAll(**built, queries);
  const auto hits_by_hand = SearchAll(**by_hand, queries);
  ASSERT_EQ(hits_returned.size(), hits_by_hand.size());
  for (size_t q = 0; q < hits_returned.size(); ++q) {
    ASSERT_EQ(hits_returned[q].size(), hits_by_hand[q].size());
    for (size_t r = 0; r < hits_returned[q].size(); ++r) {
      EXPECT_EQ(hits_returned[q][r].id, hits_by_hand[q][r].id);
    }
  }
}

TEST(GenerationBuildTest, InMemoryBuildRefusesRowsAndIdsThatDoNotFit) {
  Fixture f;
  const std::vector<int64_t> ids = testing::SequentialIds(kRows, 0);
  InMemoryBuildOptions options;
  options.spec = {kSpec, Metric::kInnerProduct, kDim};
  options.vectors = f.rows;
  options.ids = ids;
  options.output = f.scratch.path() / "out";

  InMemoryBuildOptions too_few_ids = options;
  too_few_ids.ids = std::span<const int64_t>(ids).first(kRows - 1);
  auto refused = BuildGeneration(too_few_ids);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("ids"));

  InMemoryBuildOptions partial_row = options;
  partial_row.vectors = std::span<const float>(f.rows).first(f.rows.size() - 1);
  EXPECT_EQ(BuildGeneration(partial_row).status().code(), absl::StatusCode::kInvalidArgument);

  InMemoryBuildOptions no_rows = options;
  no_rows.vectors = {};
  no_rows.ids = {};
  EXPECT_EQ(BuildGeneration(no_rows).status().code(), absl::StatusCode::kInvalidArgument);

  InMemoryBuildOptions no_shards = options;
  no_shards.num_shards = 0;
  EXPECT_EQ(BuildGeneration(no_shards).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(options.output)) << "nothing is written for a refused build";
}

TEST(GenerationBuildTest, WorkDirectoryAndGenerationAreOwnerOnly) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(RunSteps(f, work, f.scratch.path() / "gen").ok());
  for (const fs::path& dir : {work, f.scratch.path() / "gen"}) {
    EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all) << dir;
    for (const auto& entry : fs::directory_iterator(dir)) {
      EXPECT_EQ(entry.status().permissions() & fs::perms::all,
                fs::perms::owner_read | fs::perms::owner_write)
          << entry.path();
    }
  }
}

TEST(GenerationBuildTest, RerunAfterAKilledShardKeepsFinishedShardsAndCompletes) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(TrainGeneration(f.Request(), work, f.Steps()).ok());
  ASSERT_TRUE(BuildShard(work, 0, f.Steps()).ok());
  ASSERT_TRUE(BuildShard(work, 1, f.Steps()).ok());
  // Shard 2 was killed: a half-written temporary and a renamed file whose record never came.
  std::ofstream(work / ".shard-0002.faissindex.tmp-424242") << "partial";
  std::ofstream(work / "shard-0002.faissindex") << "no record was written for this";
  const FileStamp trained = StampOf(work / "trained.faissindex");
  std::vector<FileStamp> finished;
  for (int s = 0; s < 2; ++s) {
    finished.push_back(StampOf(work / (ShardName(s) + ".faissindex")));
    finished.push_back(StampOf(work / (ShardName(s) + ".json")));
  }
  EXPECT_THAT(AssembleGeneration(work, 1, f.scratch.path() / "gen", f.Steps()).message(),
              HasSubstr("shard 2 of 3 has not been built"));
  EXPECT_FALSE(fs::exists(f.scratch.path() / "gen"));

  // The one-call build over the same work directory resumes: no training, no shard 0 or 1.
  BuildGenerationOptions options;
  options.train = f.Request();
  options.output = f.scratch.path() / "gen";
  options.work_dir = work;
  options.keep_work_dir = true;
  options.steps = f.Steps();
  ASSERT_TRUE(BuildGeneration(options).ok());
  EXPECT_EQ(StampOf(work / "trained.faissindex"), trained);
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(StampOf(work / (ShardName(s) + ".faissindex")), finished[2 * s]) << s;
    EXPECT_EQ(StampOf(work / (ShardName(s) + ".json")), finished[2 * s + 1]) << s;
  }
  EXPECT_FALSE(fs::exists(work / ".shard-0002.faissindex.tmp-424242"));
  auto again = BuildShard(work, 2, f.Steps());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->reused);
  ExpectSameGeneration(f.scratch.path() / "gen", f.scratch.path() / "gen");
  ASSERT_TRUE(RunSteps(f, f.scratch.path() / "fresh", f.scratch.path() / "fresh-gen").ok());
  ExpectSameGeneration(f.scratch.path() / "gen", f.scratch.path() / "fresh-gen");
}

TEST(GenerationBuildTest, CorruptTrainedIndexIsRefused) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(TrainGeneration(f.Request(), work, f.Steps()).ok());
  FlipByte(work / "trained.faissindex", 100);
  auto shard = BuildShard(work, 0, f.Steps());
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(shard.status().message(), HasSubstr("trained index"));
  EXPECT_THAT(shard.status().message(), HasSubstr("does not match its SHA-256"));
  EXPECT_FALSE(fs::exists(work / "shard-0000.faissindex"));
}

TEST(GenerationBuildTest, TrainedIndexOfAnotherShapeIsRefused) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  auto build = TrainGeneration(f.Request(), work, f.Steps());
  ASSERT_TRUE(build.ok());
  // Someone puts a trained index of another dimension in place and fixes up build.json's hash.
  std::unique_ptr<faiss::Index> other(faiss::index_factory(8, "IVF4,Flat"));
  const std::vector<float> other_rows = testing::RandomRows(200, 8, 3);
  other->train(200, other_rows.data());
  faiss::write_index(other.get(), (work / "trained.faissindex").c_str());
  nlohmann::json doc = nlohmann::json::parse(std::ifstream(work / "build.json"));
  auto sha = [&] {
    // The real SHA-256 of the replaced file, as a careless operator would recompute it.
    std::string command = "sha256sum " + (work / "trained.faissindex").string();
    FILE* pipe = ::popen(command.c_str(), "r");
    char text[65] = {};
    EXPECT_EQ(std::fread(text, 1, 64, pipe), 64u);
    ::pclose(pipe);
    return std::string(text);
  }();
  doc["trained"]["sha256"] = sha;
  std::ofstream(work / "build.json") << doc.dump(2);
  auto shard = BuildShard(work, 0, f.Steps());
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kFailedPrecondition) << shard.status();
  EXPECT_THAT(shard.status().message(), HasSubstr("is not a trained, empty index of dimension 16"));
}

TEST(GenerationBuildTest, AssembleRefusesTamperedOrForeignShards) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  const fs::path output = f.scratch.path() / "gen";
  ASSERT_TRUE(RunSteps(f, work, output).ok());
  auto before = ReadManifest(output);
  ASSERT_TRUE(before.ok());

  FlipByte(work / "shard-0001.faissindex", 64);
  absl::Status status = AssembleGeneration(work, 5, output, f.Steps());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("shard-0001.faissindex does not match its SHA-256"));
  FlipByte(work / "shard-0001.faissindex", 64);  // back as it was

  // A shard of another build (another training run over other data) in shard 2's place.
  Fixture other;
  const fs::path other_work = other.scratch.path() / "work";
  TrainRequest request = other.Request();
  request.train_size = 1000;
  ASSERT_TRUE(TrainGeneration(request, other_work, other.Steps()).ok());
  ASSERT_TRUE(BuildShard(other_work, 2, other.Steps()).ok());
  // Put in place by rename, as every step writes: the work directory's finished shard files
  // are hard links of the published generation's, so an edit in place would change both.
  for (const std::string name : {"shard-0002.faissindex", "shard-0002.json"}) {
    fs::copy_file(other_work / name, work / (name + ".swap"));
    fs::rename(work / (name + ".swap"), work / name);
  }
  status = AssembleGeneration(work, 5, output, f.Steps());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("was built for another build.json"));

  auto after = ReadManifest(output);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->generation, before->generation) << "the published generation is untouched";
  // The foreign shard is rebuilt by the next build-shard run, and assembling then works.
  auto rebuilt = BuildShard(work, 2, f.Steps());
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_FALSE(rebuilt->reused);
  EXPECT_TRUE(AssembleGeneration(work, 5, output, f.Steps()).ok());
}

TEST(GenerationBuildTest, BadRowFailsTheShardAndLosesNothing) {
  Fixture f;
  const fs::path output = f.scratch.path() / "gen";
  ASSERT_TRUE(RunSteps(f, f.scratch.path() / "work", output).ok());
  auto before = ReadManifest(output);
  ASSERT_TRUE(before.ok());
  std::vector<float> rows = f.rows;
  rows[2002 * kDim + 3] = std::numeric_limits<float>::quiet_NaN();  // not in the sample
  ASSERT_TRUE(WriteFloatMatrix(f.input, kDim, rows).ok());
  BuildGenerationOptions options;
  options.train = f.Request();
  options.output = output;
  options.generation = 9;
  options.workers = 2;
  options.steps = f.Steps();
  auto built = BuildGeneration(options);
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(built.status().message(), HasSubstr(f.input.string() + ": offset"));
  EXPECT_THAT(built.status().message(), HasSubstr("row 2002 column 3 is NaN"));
  auto after = ReadManifest(output);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->generation, before->generation);
  EXPECT_EQ(after->shards[0].sha256, before->shards[0].sha256);
}

TEST(GenerationBuildTest, ChangedInputAfterTrainingIsRefused) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(TrainGeneration(f.Request(), work, f.Steps()).ok());
  ASSERT_TRUE(WriteFloatMatrix(f.input, kDim, testing::RandomRows(kRows + 1, kDim, 8)).ok());
  auto shard = BuildShard(work, 0, f.Steps());
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(shard.status().message(), HasSubstr("rows, build.json 3000"));
  auto retrain = TrainGeneration(f.Request(), work, f.Steps());
  EXPECT_EQ(retrain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(retrain.status().message(), HasSubstr("holds another build"));
}

TEST(GenerationBuildTest, IdsFromAFileAreUsedAndAChangedIdsFileIsRefused) {
  Fixture f;
  const fs::path ids_file = f.scratch.path() / "ids.ibin";
  std::vector<int64_t> ids(kRows);
  for (int64_t r = 0; r < kRows; ++r) ids[r] = 50000 + 7 * r;
  ASSERT_TRUE(WriteIntMatrix(ids_file, 1, ids).ok());
  TrainRequest request = f.Request();
  request.input.ids = ids_file;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(TrainGeneration(request, work, f.Steps()).ok());
  ASSERT_TRUE(BuildShard(work, 0, f.Steps()).ok());

  ids[10] = 1;  // same size, other contents, a later modification time
  ASSERT_TRUE(WriteIntMatrix(ids_file, 1, ids).ok());
  fs::last_write_time(ids_file, fs::last_write_time(ids_file) + std::chrono::seconds(2));
  auto shard = BuildShard(work, 1, f.Steps());
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kFailedPrecondition) << shard.status();
  EXPECT_THAT(shard.status().message(), HasSubstr("changed since the index was trained"));

  // With the ids as trained, every vector is found under its own id.
  ids[10] = 50000 + 70;
  ASSERT_TRUE(WriteIntMatrix(ids_file, 1, ids).ok());
  BuildGenerationOptions options;
  options.train = request;
  options.output = f.scratch.path() / "gen";
  options.steps = f.Steps();
  ASSERT_TRUE(BuildGeneration(options).ok());
  auto index = LoadGeneration(options.output);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->TotalSize(), kRows);
  const std::vector<float> probe(f.rows.begin() + 123 * kDim, f.rows.begin() + 124 * kDim);
  SearchParams params;
  params.k = 1;
  params.nprobe = 16;
  auto hits = (*index)->Search(probe, params);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0][0].id, 50000 + 7 * 123);
}

TEST(GenerationBuildTest, ShardOutsideTheBuildIsRefused) {
  Fixture f;
  const fs::path work = f.scratch.path() / "work";
  ASSERT_TRUE(TrainGeneration(f.Request(), work, f.Steps()).ok());
  EXPECT_EQ(BuildShard(work, kShards, f.Steps()).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(BuildShard(f.scratch.path() / "nowhere", 0, f.Steps()).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace probity::index
