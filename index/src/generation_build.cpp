#include "probity/index/generation_build.h"

#include <faiss/Index.h>
#include <faiss/index_io.h>
#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "generation_internal.h"
#include "probity/common/atomic_file.h"
#include "probity/common/owner_only_file.h"
#include "probity/common/sha256.h"
#include "probity/index/embedding_io.h"
#include "probity/index/private_files.h"
#include "probity/index/progress.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kBuildSpecName[] = "build.json";
constexpr char kBuildFormat[] = "probity-build-1";
constexpr char kShardRecordFormat[] = "probity-shard-1";
constexpr char kTrainedName[] = "trained.faissindex";

std::string ShardRecordName(int shard) { return absl::StrFormat("shard-%04d.json", shard); }

absl::StatusOr<json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(path.string(), ": ", e.what()));
  }
}

std::string BuildSpecToJson(const BuildSpec& spec) {
  const json doc = {{"format", kBuildFormat},
                    {"spec",
                     {{"factory", spec.spec.factory},
                      {"metric", MetricName(spec.spec.metric)},
                      {"dim", spec.spec.dim}}},
                    {"num_shards", spec.num_shards},
                    {"input",
                     {{"vectors", spec.input.vectors.string()},
                      {"ids", spec.input.ids.string()},
                      {"first_id", spec.input.first_id},
                      {"normalize", spec.input.normalize},
                      {"rows", spec.input_rows},
                      {"bytes", spec.input_bytes},
                      {"mtime_ns", spec.input_mtime_ns},
                      {"ids_bytes", spec.ids_bytes},
                      {"ids_mtime_ns", spec.ids_mtime_ns}}},
                    {"train_rows", spec.train_rows},
                    {"trained", {{"file", spec.trained_file}, {"sha256", spec.trained_sha256}}}};
  return doc.dump(2) + "\n";
}

absl::StatusOr<BuildSpec> ParseBuildSpec(const fs::path& path) {
  absl::StatusOr<json> doc = ReadJson(path);
  if (!doc.ok()) return doc.status();
  BuildSpec spec;
  try {
    if (doc->at("format").get<std::string>() != kBuildFormat) {
      return absl::DataLossError(absl::StrCat(path.string(), ": unknown format"));
    }
    const json& collection = doc->at("spec");
    spec.spec.factory = collection.at("factory").get<std::string>();
    spec.spec.dim = collection.at("dim").get<int>();
    absl::StatusOr<Metric> metric = ParseMetric(collection.at("metric").get<std::string>());
    if (!metric.ok()) return absl::DataLossError(absl::StrCat(path.string(), ": bad metric"));
    spec.spec.metric = *metric;
    spec.num_shards = doc->at("num_shards").get<int>();
    const json& input = doc->at("input");
    spec.input.vectors = input.at("vectors").get<std::string>();
    spec.input.ids = input.at("ids").get<std::string>();
    spec.input.first_id = input.at("first_id").get<int64_t>();
    spec.input.normalize = input.at("normalize").get<bool>();
    spec.input_rows = input.at("rows").get<int64_t>();
    spec.input_bytes = input.at("bytes").get<int64_t>();
    spec.input_mtime_ns = input.at("mtime_ns").get<int64_t>();
    spec.ids_bytes = input.at("ids_bytes").get<int64_t>();
    spec.ids_mtime_ns = input.at("ids_mtime_ns").get<int64_t>();
    spec.train_rows = doc->at("train_rows").get<int64_t>();
    spec.trained_file = doc->at("trained").at("file").get<std::string>();
    spec.trained_sha256 = doc->at("trained").at("sha256").get<std::string>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(path.string(), ": ", e.what()));
  }
  if (spec.num_shards <= 0 || spec.spec.dim <= 0 || spec.trained_file.empty() ||
      spec.trained_file.find('/') != std::string::npos) {
    return absl::DataLossError(absl::StrCat(path.string(), ": inconsistent build spec"));
  }
  return spec;
}

std::string ShardRecordToJson(const ShardRecord& record) {
  const json doc = {{"format", kShardRecordFormat},
                    {"shard", record.shard},
                    {"num_shards", record.num_shards},
                    {"file", record.file},
                    {"count", record.count},
                    {"sha256", record.sha256},
                    {"build_sha256", record.build_sha256}};
  return doc.dump(2) + "\n";
}

absl::StatusOr<ShardRecord> ParseShardRecord(const fs::path& path) {
  absl::StatusOr<json> doc = ReadJson(path);
  if (!doc.ok()) return doc.status();
  ShardRecord record;
  try {
    if (doc->at("format").get<std::string>() != kShardRecordFormat) {
      return absl::DataLossError(absl::StrCat(path.string(), ": unknown format"));
    }
    record.shard = doc->at("shard").get<int>();
    record.num_shards = doc->at("num_shards").get<int>();
    record.file = doc->at("file").get<std::string>();
    record.count = doc->at("count").get<int64_t>();
    record.sha256 = doc->at("sha256").get<std::string>();
    record.build_sha256 = doc->at("build_sha256").get<std::string>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(path.string(), ": ", e.what()));
  }
  if (record.file != internal::ShardFileName(record.shard)) {
    return absl::DataLossError(absl::StrCat(path.string(), ": names file '", record.file, "'"));
  }
  return record;
}

// A finished shard is usable when its record belongs to this build and slot and its file still
// has the recorded SHA-256. The reason it is not, otherwise.
absl::StatusOr<ShardRecord> VerifyShard(const fs::path& work_dir, const BuildSpec& build,
                                        int shard) {
  const fs::path record_path = work_dir / ShardRecordName(shard);
  absl::StatusOr<ShardRecord> record = ParseShardRecord(record_path);
  if (!record.ok()) {
    if (absl::IsNotFound(record.status())) {
      return absl::FailedPreconditionError(absl::StrCat("shard ", shard, " of ", build.num_shards,
                                                        " has not been built (no ",
                                                        record_path.string(), ")"));
    }
    return record.status();
  }
  if (record->shard != shard || record->num_shards != build.num_shards) {
    return absl::FailedPreconditionError(
        absl::StrCat(record_path.string(), ": is shard ", record->shard, " of ", record->num_shards,
                     ", expected shard ", shard, " of ", build.num_shards));
  }
  if (record->build_sha256 != build.sha256) {
    return absl::FailedPreconditionError(
        absl::StrCat(record_path.string(),
                     ": was built for another build.json (another trained index, spec "
                     "or input): build.json's SHA-256 is ",
                     build.sha256, ", the shard names ", record->build_sha256));
  }
  const fs::path file = work_dir / record->file;
  absl::StatusOr<std::string> sha = common::Sha256HexOfFile(file);
  if (!sha.ok()) {
    return absl::DataLossError(
        absl::StrCat("shard file ", file.string(), " is missing or unreadable"));
  }
  if (*sha != record->sha256) {
    return absl::DataLossError(absl::StrCat("shard file ", file.string(),
                                            " does not match its SHA-256 in ", record_path.string(),
                                            " (expected ", record->sha256, ", found ", *sha, ")"));
  }
  return record;
}

struct InputIdentity {
  int64_t bytes = 0;
  int64_t mtime_ns = 0;
};

absl::StatusOr<InputIdentity> IdentityOf(const fs::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": ", strerror(errno)));
  }
  return InputIdentity{
      static_cast<int64_t>(info.st_size),
      static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec};
}

absl::StatusOr<std::unique_ptr<MatrixReader>> OpenVectors(const fs::path& path, Metric metric,
                                                          bool normalize,
                                                          std::optional<int> expected_dim) {
  ReadOptions options;
  options.reject_zero_vectors = metric == Metric::kInnerProduct;
  options.normalize = normalize;
  options.expected_dim = expected_dim;
  return MatrixReader::Open(path, options);
}

absl::StatusOr<std::unique_ptr<MatrixReader>> OpenIds(const fs::path& path, int64_t rows) {
  absl::StatusOr<std::unique_ptr<MatrixReader>> ids = MatrixReader::Open(path);
  if (!ids.ok()) return ids.status();
  if ((*ids)->dim() != 1 || (*ids)->rows() != rows) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": expected ", rows,
                                                   " ids in one column, found ", (*ids)->rows(),
                                                   " rows of ", (*ids)->dim()));
  }
  return ids;
}

// Row `pick` (0..wanted-1) of an evenly strided sample of `wanted` of `rows` rows: the one
// sampling rule of the file build and the in-memory build, so both train on the same rows.
int64_t SampledRow(int64_t pick, int64_t rows, int64_t wanted) { return pick * rows / wanted; }

// An evenly strided sample (SampledRow for pick = 0..wanted-1). A dense sample
// streams the file; a sparse one reads just its rows by offset, so sampling a billion-row file
// costs the sample, not the file.
absl::StatusOr<std::vector<float>> ReadTrainingSample(MatrixReader& reader, int64_t wanted,
                                                      int64_t chunk_rows, std::ostream* progress) {
  const int64_t rows = reader.rows();
  const int dim = reader.dim();
  std::vector<float> sample;
  sample.reserve(wanted * dim);
  std::unique_ptr<ProgressBar> bar;
  if (progress != nullptr) {
    bar = std::make_unique<ProgressBar>("reading training sample", wanted, "vectors", *progress);
  }
  if (wanted * 4 >= rows) {
    std::vector<float> chunk;
    int64_t next_pick = 0;
    for (int64_t first = 0; first < rows;) {
      chunk.clear();
      absl::StatusOr<int64_t> got = reader.ReadFloatsAt(first, chunk_rows, &chunk);
      if (!got.ok()) return got.status();
      if (*got == 0) break;
      for (int64_t r = 0; r < *got; ++r) {
        while (next_pick < wanted && SampledRow(next_pick, rows, wanted) == first + r) {
          sample.insert(sample.end(), chunk.begin() + r * dim, chunk.begin() + (r + 1) * dim);
          ++next_pick;
        }
      }
      first += *got;
      if (bar) bar->Set(next_pick);
    }
  } else {
    for (int64_t pick = 0; pick < wanted; ++pick) {
      absl::StatusOr<int64_t> got = reader.ReadFloatsAt(SampledRow(pick, rows, wanted), 1, &sample);
      if (!got.ok()) return got.status();
      if (bar && pick % 4096 == 0) bar->Set(pick);
    }
  }
  if (bar) {
    bar->Set(wanted);
    bar->Finish();
  }
  return sample;
}

bool SameBuild(const BuildSpec& existing, const BuildSpec& wanted) {
  return existing.spec.factory == wanted.spec.factory &&
         existing.spec.metric == wanted.spec.metric && existing.spec.dim == wanted.spec.dim &&
         existing.num_shards == wanted.num_shards &&
         existing.input.vectors == wanted.input.vectors && existing.input.ids == wanted.input.ids &&
         existing.input.first_id == wanted.input.first_id &&
         existing.input.normalize == wanted.input.normalize &&
         existing.input_rows == wanted.input_rows && existing.input_bytes == wanted.input_bytes &&
         existing.input_mtime_ns == wanted.input_mtime_ns &&
         existing.ids_bytes == wanted.ids_bytes && existing.ids_mtime_ns == wanted.ids_mtime_ns &&
         existing.train_rows == wanted.train_rows;
}

// Removes what a killed run of this shard left behind (temporary files only).
void RemoveStaleTemporaries(const fs::path& work_dir, int shard) {
  const std::string prefixes[] = {absl::StrCat(".", internal::ShardFileName(shard), ".tmp-"),
                                  absl::StrCat(".", ShardRecordName(shard), ".tmp-")};
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(work_dir, error)) {
    const std::string name = entry.path().filename().string();
    for (const std::string& prefix : prefixes) {
      if (name.rfind(prefix, 0) == 0) fs::remove(entry.path(), error);
    }
  }
}

// faiss::write_index to a temporary name, owner-only, fsynced, then renamed to `path`. Returns
// the SHA-256 of what was renamed (hashed before the rename, so it names this process's file).
absl::StatusOr<std::string> WriteIndexAtomically(const faiss::Index& index, const fs::path& path) {
  const fs::path temp = common::UniqueTemporarySibling(path);
  std::error_code ignored;
  try {
    faiss::write_index(&index, temp.c_str());
  } catch (const std::exception& e) {
    fs::remove(temp, ignored);
    return absl::InternalError(absl::StrCat(temp.string(), ": FAISS write failed: ", e.what()));
  }
  absl::Status status = MakeOwnerOnly(temp);
  if (status.ok()) status = common::SyncPath(temp);
  absl::StatusOr<std::string> sha = common::Sha256HexOfFile(temp);
  if (status.ok() && !sha.ok()) status = sha.status();
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status =
        absl::InternalError(absl::StrCat("cannot rename ", temp.string(), ": ", strerror(errno)));
  }
  if (!status.ok()) {
    fs::remove(temp, ignored);
    return status;
  }
  if (absl::Status s = common::SyncPath(path.parent_path()); !s.ok()) return s;
  return sha;
}

absl::Status PrepareWorkDir(const fs::path& work_dir) {
  if (absl::Status s = CreatePrivateDirectories(work_dir); !s.ok()) return s;
  return MakeOwnerOnly(work_dir);
}

// Hard link where the work directory and the output share a file system (no copy of a
// many-gigabyte shard), a copy otherwise.
absl::Status LinkOrCopy(const fs::path& from, const fs::path& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
  if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
    return absl::InternalError(
        absl::StrCat("cannot link ", from.string(), " to ", to.string(), ": ", strerror(errno)));
  }
  std::error_code error;
  fs::copy_file(from, to, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot copy ", from.string(), " to ", to.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace

fs::path DefaultWorkDir(const fs::path& output) {
  std::error_code error;
  fs::path target = fs::absolute(output, error);
  if (error) target = output;
  if (target.filename().empty()) target = target.parent_path();
  return target.parent_path() / absl::StrCat(".", target.filename().string(), ".build");
}

absl::StatusOr<BuildSpec> ReadBuildSpec(const fs::path& work_dir) {
  const fs::path path = work_dir / kBuildSpecName;
  absl::StatusOr<BuildSpec> spec = ParseBuildSpec(path);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::string> own_sha = common::Sha256HexOfFile(path);
  if (!own_sha.ok()) return own_sha.status();
  spec->sha256 = *own_sha;
  const fs::path trained = work_dir / spec->trained_file;
  absl::StatusOr<std::string> sha = common::Sha256HexOfFile(trained);
  if (!sha.ok()) {
    return absl::DataLossError(
        absl::StrCat("trained index ", trained.string(), " is missing or unreadable"));
  }
  if (*sha != spec->trained_sha256) {
    return absl::DataLossError(
        absl::StrCat("trained index ", trained.string(), " does not match its SHA-256 in ",
                     path.string(), " (expected ", spec->trained_sha256, ", found ", *sha, ")"));
  }
  return spec;
}

absl::StatusOr<BuildSpec> TrainGeneration(const TrainRequest& request, const fs::path& work_dir,
                                          const StepOptions& options) {
  if (request.num_shards <= 0) {
    return absl::InvalidArgumentError("the number of shards must be positive");
  }
  if (request.train_size <= 0 || request.chunk_rows <= 0) {
    return absl::InvalidArgumentError("the training sample size and chunk must be positive");
  }
  absl::StatusOr<std::unique_ptr<MatrixReader>> reader =
      OpenVectors(request.input.vectors, request.metric, request.input.normalize, std::nullopt);
  if (!reader.ok()) return reader.status();
  const int64_t rows = (*reader)->rows();
  if (rows == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.input.vectors.string(), ": holds no vectors"));
  }
  if (!request.input.ids.empty()) {
    if (absl::Status s = OpenIds(request.input.ids, rows).status(); !s.ok()) return s;
  }
  absl::StatusOr<InputIdentity> identity = IdentityOf(request.input.vectors);
  if (!identity.ok()) return identity.status();

  BuildSpec wanted;
  wanted.spec = CollectionSpec{request.factory, request.metric, (*reader)->dim()};
  wanted.num_shards = request.num_shards;
  wanted.input = request.input;
  wanted.input_rows = rows;
  wanted.input_bytes = identity->bytes;
  wanted.input_mtime_ns = identity->mtime_ns;
  if (!request.input.ids.empty()) {
    absl::StatusOr<InputIdentity> ids_identity = IdentityOf(request.input.ids);
    if (!ids_identity.ok()) return ids_identity.status();
    wanted.ids_bytes = ids_identity->bytes;
    wanted.ids_mtime_ns = ids_identity->mtime_ns;
  }
  wanted.train_rows = std::min(rows, request.train_size);
  wanted.trained_file = kTrainedName;

  if (absl::Status s = PrepareWorkDir(work_dir); !s.ok()) return s;
  if (fs::exists(work_dir / kBuildSpecName)) {
    absl::StatusOr<BuildSpec> existing = ReadBuildSpec(work_dir);
    if (!existing.ok()) return existing.status();
    if (!SameBuild(*existing, wanted)) {
      return absl::FailedPreconditionError(
          absl::StrCat(work_dir.string(), " holds another build (", existing->spec.factory, ", ",
                       existing->num_shards, " shards, ", existing->input.vectors.string(),
                       "); remove it or choose another work directory"));
    }
    if (options.progress != nullptr) {
      *options.progress << "reusing the trained index in " << work_dir.string() << "\n";
    }
    return existing;
  }

  absl::StatusOr<std::vector<float>> sample =
      ReadTrainingSample(**reader, wanted.train_rows, request.chunk_rows, options.progress);
  if (!sample.ok()) return sample.status();
  absl::StatusOr<std::unique_ptr<ShardedIndex>> trained;
  {
    std::shared_ptr<void> scope;
    if (request.around_training) scope = request.around_training(wanted.train_rows);
    trained = ShardedIndex::Train(wanted.spec, *sample, 1, request.train_options);
  }
  if (!trained.ok()) return trained.status();
  sample->clear();
  sample->shrink_to_fit();

  absl::StatusOr<std::string> sha =
      WriteIndexAtomically((*trained)->shard_index(0), work_dir / kTrainedName);
  if (!sha.ok()) return sha.status();
  wanted.trained_sha256 = *sha;
  // build.json last: it is what marks the step finished.
  if (absl::Status s =
          common::WriteOwnerOnlyFile(work_dir / kBuildSpecName, BuildSpecToJson(wanted));
      !s.ok()) {
    return s;
  }
  return ReadBuildSpec(work_dir);
}

absl::StatusOr<ShardBuildResult> BuildShard(const fs::path& work_dir, int shard,
                                            const StepOptions& options) {
  if (options.chunk_rows <= 0) return absl::InvalidArgumentError("the chunk must be positive");
  absl::StatusOr<BuildSpec> build = ReadBuildSpec(work_dir);
  if (!build.ok()) return build.status();
  if (shard < 0 || shard >= build->num_shards) {
    return absl::OutOfRangeError(
        absl::StrCat("shard ", shard, " is outside 0..", build->num_shards - 1));
  }
  RemoveStaleTemporaries(work_dir, shard);
  {
    absl::StatusOr<ShardRecord> finished = VerifyShard(work_dir, *build, shard);
    if (finished.ok()) return ShardBuildResult{*finished, true};
    if (options.progress != nullptr && fs::exists(work_dir / ShardRecordName(shard))) {
      *options.progress << "rebuilding shard " << shard << ": " << finished.status().message()
                        << "\n";
    }
  }

  const fs::path trained_path = work_dir / build->trained_file;
  std::unique_ptr<faiss::Index> trained;
  try {
    trained.reset(faiss::read_index(trained_path.c_str()));
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat(trained_path.string(), ": FAISS cannot read it: ", e.what()));
  }
  if (trained->d != build->spec.dim || !trained->is_trained || trained->ntotal != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        trained_path.string(), " is not a trained, empty index of dimension ", build->spec.dim,
        " (dimension ", trained->d, ", ", trained->is_trained ? "trained" : "untrained", ", ",
        trained->ntotal, " vectors)"));
  }
  std::vector<std::unique_ptr<faiss::Index>> shards(build->num_shards);
  shards[shard] = std::move(trained);
  absl::StatusOr<std::unique_ptr<ShardedIndex>> index =
      ShardedIndex::FromShards(build->spec, std::move(shards), {});
  if (!index.ok()) return index.status();

  const fs::path vectors_path = options.vectors.empty() ? build->input.vectors : options.vectors;
  const fs::path ids_path = options.ids.empty() ? build->input.ids : options.ids;
  absl::StatusOr<std::unique_ptr<MatrixReader>> vectors =
      OpenVectors(vectors_path, build->spec.metric, build->input.normalize, build->spec.dim);
  if (!vectors.ok()) return vectors.status();
  if ((*vectors)->rows() != build->input_rows) {
    return absl::FailedPreconditionError(absl::StrCat(vectors_path.string(), " has ",
                                                      (*vectors)->rows(), " rows, build.json ",
                                                      build->input_rows));
  }
  absl::StatusOr<InputIdentity> identity = IdentityOf(vectors_path);
  if (!identity.ok()) return identity.status();
  if (identity->bytes != build->input_bytes ||
      (options.vectors.empty() && identity->mtime_ns != build->input_mtime_ns)) {
    return absl::FailedPreconditionError(
        absl::StrCat(vectors_path.string(),
                     " changed since the index was trained (size or modification "
                     "time differs from build.json); train again"));
  }
  std::unique_ptr<MatrixReader> ids;
  if (!ids_path.empty()) {
    // Every shard must split the same ids: a changed ids file would put a vector in two shards
    // or in none.
    absl::StatusOr<InputIdentity> ids_identity = IdentityOf(ids_path);
    if (!ids_identity.ok()) return ids_identity.status();
    if (ids_identity->bytes != build->ids_bytes ||
        (options.ids.empty() && ids_identity->mtime_ns != build->ids_mtime_ns)) {
      return absl::FailedPreconditionError(
          absl::StrCat(ids_path.string(),
                       " changed since the index was trained (size or "
                       "modification time differs from build.json); train again"));
    }
    absl::StatusOr<std::unique_ptr<MatrixReader>> opened = OpenIds(ids_path, build->input_rows);
    if (!opened.ok()) return opened.status();
    ids = *std::move(opened);
  }

  {
    std::unique_ptr<ProgressBar> bar;
    if (options.progress != nullptr) {
      bar = std::make_unique<ProgressBar>(
          absl::StrCat("shard ", shard, " of ", build->num_shards, ": reading"), build->input_rows,
          "vectors", *options.progress);
    }
    std::vector<float> chunk, mine;
    std::vector<int64_t> chunk_ids, mine_ids;
    const int dim = build->spec.dim;
    for (int64_t done = 0; done < build->input_rows;) {
      chunk.clear();
      chunk_ids.clear();
      absl::StatusOr<int64_t> got = (*vectors)->ReadFloatsAt(done, options.chunk_rows, &chunk);
      if (!got.ok()) return got.status();
      if (*got == 0) break;
      if (ids) {
        absl::StatusOr<int64_t> got_ids = ids->ReadIntsAt(done, *got, &chunk_ids);
        if (!got_ids.ok()) return got_ids.status();
      } else {
        for (int64_t r = 0; r < *got; ++r) chunk_ids.push_back(build->input.first_id + done + r);
      }
      mine.clear();
      mine_ids.clear();
      for (int64_t r = 0; r < *got; ++r) {
        if ((*index)->ShardOf(chunk_ids[r]) != shard) continue;
        mine_ids.push_back(chunk_ids[r]);
        mine.insert(mine.end(), chunk.begin() + r * dim, chunk.begin() + (r + 1) * dim);
      }
      if (absl::Status s = (*index)->Add(mine, mine_ids); !s.ok()) return s;
      done += *got;
      if (bar) bar->Set(done);
    }
    if (bar) bar->Finish();
  }

  ShardRecord record;
  record.shard = shard;
  record.num_shards = build->num_shards;
  record.file = internal::ShardFileName(shard);
  record.count = (*index)->ShardSize(shard);
  record.build_sha256 = build->sha256;
  absl::StatusOr<std::string> sha =
      WriteIndexAtomically((*index)->shard_index(shard), work_dir / record.file);
  if (!sha.ok()) return sha.status();
  record.sha256 = *sha;
  // The record last: only a shard with a record counts as finished.
  if (absl::Status s =
          common::WriteOwnerOnlyFile(work_dir / ShardRecordName(shard), ShardRecordToJson(record));
      !s.ok()) {
    return s;
  }
  return ShardBuildResult{record, false};
}

absl::Status AssembleGeneration(const fs::path& work_dir, int64_t generation,
                                const fs::path& output, const StepOptions& options) {
  absl::StatusOr<BuildSpec> build = ReadBuildSpec(work_dir);
  if (!build.ok()) return build.status();
  std::vector<ShardRecord> records;
  int64_t total = 0;
  for (int s = 0; s < build->num_shards; ++s) {
    absl::StatusOr<ShardRecord> record = VerifyShard(work_dir, *build, s);
    if (!record.ok()) return record.status();
    total += record->count;
    records.push_back(*std::move(record));
  }
  if (total != build->input_rows) {
    return absl::FailedPreconditionError(
        absl::StrCat("the shards hold ", total, " vectors, the input has ", build->input_rows));
  }
  if (options.progress != nullptr) {
    *options.progress << "assembling generation " << generation << " (" << total << " vectors in "
                      << build->num_shards << " shards) -> " << output.string() << "\n";
  }
  const auto stage = [&](const fs::path& staging) -> absl::StatusOr<std::vector<ShardFile>> {
    std::vector<ShardFile> files;
    for (const ShardRecord& record : records) {
      const std::string name = internal::ShardFileName(record.shard);
      if (absl::Status s = LinkOrCopy(work_dir / record.file, staging / name); !s.ok()) return s;
      files.push_back(ShardFile{name, record.count, record.sha256});
    }
    return files;
  };
  return internal::PublishGeneration(build->spec, generation, {}, stage, output);
}

absl::StatusOr<BuildSpec> BuildGeneration(const BuildGenerationOptions& options) {
  if (options.workers <= 0) return absl::InvalidArgumentError("workers must be positive");
  if (options.output.empty()) return absl::InvalidArgumentError("no output directory");
  const fs::path work_dir =
      options.work_dir.empty() ? DefaultWorkDir(options.output) : options.work_dir;
  TrainRequest train = options.train;
  train.chunk_rows = options.steps.chunk_rows;
  std::error_code error;
  const bool work_dir_existed = fs::exists(work_dir, error);
  absl::StatusOr<BuildSpec> build = TrainGeneration(train, work_dir, options.steps);
  if (absl::IsFailedPrecondition(build.status()) && options.work_dir.empty() &&
      fs::exists(work_dir / kBuildSpecName)) {
    // The default work directory is this command's own scratch: one left by a build of other
    // flags or of a changed input is replaced rather than refused.
    if (options.steps.progress != nullptr) {
      *options.steps.progress << "replacing " << work_dir.string() << ": "
                              << build.status().message() << "\n";
    }
    fs::remove_all(work_dir, error);
    if (error) {
      return absl::InternalError(absl::StrCat(work_dir.string(), ": ", error.message()));
    }
    build = TrainGeneration(train, work_dir, options.steps);
  }
  if (!build.ok()) {
    // Nothing to resume from a training that failed in a directory this call made.
    if (!work_dir_existed && !fs::exists(work_dir / kBuildSpecName, error)) {
      fs::remove_all(work_dir, error);
    }
    return build.status();
  }

  const int workers = std::min(options.workers, build->num_shards);
  // Each worker thread sets its own OpenMP team size, so the caller's setting is untouched.
  const int threads_each = std::max(1, omp_get_max_threads() / workers);
  std::atomic<int> next_shard{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  absl::Status first_error;
  int finished = 0;
  const auto work = [&] {
    omp_set_num_threads(threads_each);  // this thread's OpenMP teams only
    StepOptions steps = options.steps;
    // One worker draws its progress bars; several would overwrite each other's line.
    if (workers > 1) steps.progress = nullptr;
    for (int shard; !failed && (shard = next_shard++) < build->num_shards;) {
      absl::StatusOr<ShardBuildResult> result = BuildShard(work_dir, shard, steps);
      std::lock_guard lock(mutex);
      if (!result.ok()) {
        if (!failed.exchange(true)) first_error = result.status();
        return;
      }
      ++finished;
      if (options.steps.progress != nullptr) {
        *options.steps.progress << absl::StrFormat(
            "shard %d of %d %s: %d vectors (%d/%d done)\n", shard, build->num_shards,
            result->reused ? "was already built" : "built", result->record.count, finished,
            build->num_shards);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) pool.emplace_back(work);
  for (std::thread& thread : pool) thread.join();
  if (failed) return first_error;

  if (absl::Status s =
          AssembleGeneration(work_dir, options.generation, options.output, options.steps);
      !s.ok()) {
    return s;
  }
  if (!options.keep_work_dir) {
    fs::remove_all(work_dir, error);  // the generation holds its own links to the shard files
  }
  return build;
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> BuildGeneration(const InMemoryBuildOptions& options) {
  const int dim = options.spec.dim;
  if (dim <= 0) return absl::InvalidArgumentError("the dimension must be positive");
  if (options.num_shards <= 0) {
    return absl::InvalidArgumentError("the number of shards must be positive");
  }
  if (options.train_size <= 0) {
    return absl::InvalidArgumentError("the training sample size must be positive");
  }
  if (options.output.empty()) return absl::InvalidArgumentError("no output directory");
  if (options.vectors.empty() || options.vectors.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(options.vectors.size(),
                                                   " floats are no whole, non-empty number of rows "
                                                   "of dimension ",
                                                   dim));
  }
  const int64_t rows = static_cast<int64_t>(options.vectors.size()) / dim;
  if (static_cast<int64_t>(options.ids.size()) != rows) {
    return absl::InvalidArgumentError(absl::StrCat(rows, " rows but ", options.ids.size(), " ids"));
  }
  const int64_t wanted = std::min(rows, options.train_size);
  std::vector<float> strided;
  std::span<const float> sample = options.vectors;
  if (wanted < rows) {
    strided.reserve(wanted * dim);
    for (int64_t pick = 0; pick < wanted; ++pick) {
      const auto row = options.vectors.subspan(SampledRow(pick, rows, wanted) * dim, dim);
      strided.insert(strided.end(), row.begin(), row.end());
    }
    sample = strided;
  }
  absl::StatusOr<std::unique_ptr<ShardedIndex>> index =
      ShardedIndex::Train(options.spec, sample, options.num_shards);
  if (!index.ok()) return index.status();
  strided.clear();
  strided.shrink_to_fit();
  if (absl::Status s = (*index)->Add(options.vectors, options.ids); !s.ok()) return s;
  if (absl::Status s = WriteGeneration(**index, options.generation, options.output); !s.ok()) {
    return s;
  }
  return index;
}

}  // namespace probity::index
