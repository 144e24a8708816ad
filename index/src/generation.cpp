#include "probity/index/generation.h"

#include <faiss/Index.h>
#include <faiss/index_io.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "generation_internal.h"
#include "probity/common/atomic_file.h"
#include "probity/common/sha256.h"
#include "probity/index/private_files.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kManifestName[] = "manifest.json";
constexpr char kFormat[] = "probity-generation-1";
constexpr char kErasedName[] = "erased-ids.txt";

std::string NowRfc3339() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Removes a temporary directory unless it was handed over.
class TempDir {
 public:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

// Puts `from` in place of `to`. An existing generation is swapped out atomically
// (RENAME_EXCHANGE) so that `to` always names a complete generation; the old one is then
// left in `from` for the caller to delete.
absl::Status Publish(const fs::path& from, const fs::path& to, bool* swapped) {
  *swapped = false;
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return absl::OkStatus();
  }
  if (errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", from.string(), " to ", to.string(), ": ", strerror(errno)));
  }
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot swap ", from.string(), " with ", to.string(), ": ", strerror(errno)));
  }
  *swapped = true;
  return absl::OkStatus();
}

json ManifestToJson(const Manifest& manifest) {
  json shards = json::array();
  for (const ShardFile& shard : manifest.shards) {
    shards.push_back({{"file", shard.file}, {"count", shard.count}, {"sha256", shard.sha256}});
  }
  return {{"format", kFormat},
          {"generation", manifest.generation},
          {"created_at", manifest.created_at},
          {"spec",
           {{"factory", manifest.spec.factory},
            {"metric", MetricName(manifest.spec.metric)},
            {"dim", manifest.spec.dim}}},
          {"shards", shards},
          {"erased", {{"file", manifest.erased_file}, {"sha256", manifest.erased_sha256}}}};
}

// A file named in a manifest must stay inside the generation directory.
absl::Status CheckPlainName(const std::string& name, const fs::path& manifest_path) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return absl::DataLossError(
        absl::StrCat(manifest_path.string(), ": bad file name '", name, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Manifest> ParseManifest(const fs::path& manifest_path) {
  std::ifstream in(manifest_path);
  if (!in) return absl::NotFoundError(absl::StrCat(manifest_path.string(), ": cannot open"));
  Manifest manifest;
  try {
    const json doc = json::parse(in);
    if (doc.at("format").get<std::string>() != kFormat) {
      return absl::DataLossError(absl::StrCat(manifest_path.string(), ": unknown format '",
                                              doc.at("format").get<std::string>(), "'"));
    }
    manifest.generation = doc.at("generation").get<int64_t>();
    manifest.created_at = doc.at("created_at").get<std::string>();
    const json& spec = doc.at("spec");
    manifest.spec.factory = spec.at("factory").get<std::string>();
    manifest.spec.dim = spec.at("dim").get<int>();
    absl::StatusOr<Metric> metric = ParseMetric(spec.at("metric").get<std::string>());
    if (!metric.ok()) {
      return absl::DataLossError(
          absl::StrCat(manifest_path.string(), ": ", metric.status().message()));
    }
    manifest.spec.metric = *metric;
    for (const json& shard : doc.at("shards")) {
      manifest.shards.push_back(ShardFile{shard.at("file").get<std::string>(),
                                          shard.at("count").get<int64_t>(),
                                          shard.at("sha256").get<std::string>()});
    }
    manifest.erased_file = doc.at("erased").at("file").get<std::string>();
    manifest.erased_sha256 = doc.at("erased").at("sha256").get<std::string>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(manifest_path.string(), ": ", e.what()));
  }
  if (manifest.shards.empty()) {
    return absl::DataLossError(absl::StrCat(manifest_path.string(), ": no shards"));
  }
  for (const ShardFile& shard : manifest.shards) {
    if (absl::Status s = CheckPlainName(shard.file, manifest_path); !s.ok()) return s;
  }
  if (!manifest.erased_file.empty()) {
    if (absl::Status s = CheckPlainName(manifest.erased_file, manifest_path); !s.ok()) return s;
  }
  return manifest;
}

absl::Status VerifyFile(const fs::path& dir, const std::string& name,
                        const std::string& expected_sha256) {
  const fs::path path = dir / name;
  absl::StatusOr<std::string> actual = common::Sha256HexOfFile(path);
  if (!actual.ok()) {
    return absl::DataLossError(
        absl::StrCat("generation file ", path.string(), " is missing or unreadable"));
  }
  if (*actual != expected_sha256) {
    return absl::DataLossError(absl::StrCat("generation file ", path.string(),
                                            " does not match its SHA-256 in manifest.json "
                                            "(expected ",
                                            expected_sha256, ", found ", *actual, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ReadErasedIds(const fs::path& dir, const Manifest& manifest) {
  std::vector<int64_t> ids;
  if (manifest.erased_file.empty()) return ids;
  const fs::path path = dir / manifest.erased_file;
  std::ifstream in(path);
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    int64_t id;
    if (!absl::SimpleAtoi(line, &id)) {
      return absl::DataLossError(
          absl::StrCat(path.string(), ": line ", line_number, " is not an id"));
    }
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> Load(const fs::path& dir,
                                                   const std::set<int>* wanted) {
  absl::StatusOr<Manifest> manifest = ParseManifest(dir / kManifestName);
  if (!manifest.ok()) return manifest.status();
  const int num_shards = static_cast<int>(manifest->shards.size());
  if (wanted != nullptr) {
    for (int shard : *wanted) {
      if (shard < 0 || shard >= num_shards) {
        return absl::OutOfRangeError(
            absl::StrCat("generation ", dir.string(), " has no shard ", shard));
      }
    }
  }
  if (!manifest->erased_file.empty()) {
    if (absl::Status s = VerifyFile(dir, manifest->erased_file, manifest->erased_sha256); !s.ok()) {
      return s;
    }
  }
  std::vector<std::unique_ptr<faiss::Index>> shards(num_shards);
  for (int s = 0; s < num_shards; ++s) {
    if (wanted != nullptr && !wanted->contains(s)) continue;
    const ShardFile& file = manifest->shards[s];
    if (absl::Status status = VerifyFile(dir, file.file, file.sha256); !status.ok()) return status;
    const fs::path path = dir / file.file;
    try {
      shards[s].reset(faiss::read_index(path.c_str()));
    } catch (const std::exception& e) {
      return absl::DataLossError(absl::StrCat(path.string(), ": FAISS cannot read it: ", e.what()));
    }
    if (shards[s]->ntotal != file.count || shards[s]->d != manifest->spec.dim) {
      return absl::DataLossError(absl::StrCat(
          path.string(), ": holds ", shards[s]->ntotal, " vectors of dimension ", shards[s]->d,
          ", manifest.json says ", file.count, " of ", manifest->spec.dim));
    }
  }
  absl::StatusOr<std::vector<int64_t>> erased = ReadErasedIds(dir, *manifest);
  if (!erased.ok()) return erased.status();
  return ShardedIndex::FromShards(manifest->spec, std::move(shards), *std::move(erased));
}

}  // namespace

namespace internal {

std::string ShardFileName(int shard) { return absl::StrFormat("shard-%04d.faissindex", shard); }

absl::Status PublishGeneration(const CollectionSpec& spec, int64_t generation,
                               const std::vector<int64_t>& erased_ids,
                               const StageShards& stage_shards, const fs::path& dir) {
  std::error_code error;
  const fs::path target = fs::absolute(dir, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": ", error.message()));
  // Owner-only from the start: a gallery is never readable by other local users, whatever the
  // umask.
  if (absl::Status s = CreatePrivateDirectories(target.parent_path()); !s.ok()) return s;
  std::random_device entropy;
  TempDir temp(target.parent_path() / absl::StrFormat(".%s.tmp-%d-%08x", target.filename().string(),
                                                      ::getpid(), entropy()));
  fs::create_directory(temp.path(), error);
  if (error) return absl::InternalError(absl::StrCat(temp.path().string(), ": ", error.message()));
  if (absl::Status s = MakeOwnerOnly(temp.path()); !s.ok()) return s;

  Manifest manifest;
  manifest.spec = spec;
  manifest.generation = generation;
  manifest.created_at = NowRfc3339();
  absl::StatusOr<std::vector<ShardFile>> shards = stage_shards(temp.path());
  if (!shards.ok()) return shards.status();
  manifest.shards = *std::move(shards);
  {
    manifest.erased_file = kErasedName;
    const fs::path path = temp.path() / kErasedName;
    std::ofstream out(path);
    for (int64_t id : erased_ids) out << id << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat(path.string(), ": write failed"));
    absl::StatusOr<std::string> sha = common::Sha256HexOfFile(path);
    if (!sha.ok()) return sha.status();
    manifest.erased_sha256 = *sha;
  }
  {
    const fs::path path = temp.path() / kManifestName;
    std::ofstream out(path);
    out << ManifestToJson(manifest).dump(2) << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat(path.string(), ": write failed"));
  }
  for (const auto& entry : fs::directory_iterator(temp.path())) {
    if (absl::Status s = MakeOwnerOnly(entry.path()); !s.ok()) return s;
    if (absl::Status s = common::SyncPath(entry.path()); !s.ok()) return s;
  }
  if (absl::Status s = common::SyncPath(temp.path()); !s.ok()) return s;
  bool swapped = false;
  if (absl::Status s = Publish(temp.path(), target, &swapped); !s.ok()) return s;
  // After a swap the temporary path holds the previous generation, which TempDir deletes.
  if (!swapped) temp.Release();
  return common::SyncPath(target.parent_path());
}

}  // namespace internal

absl::Status WriteGeneration(const ShardedIndex& index, int64_t generation, const fs::path& dir) {
  for (int s = 0; s < index.num_shards(); ++s) {
    if (!index.HasShard(s)) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write a generation: shard ", s, " is not loaded here"));
    }
  }
  const auto write_shards =
      [&index](const fs::path& staging) -> absl::StatusOr<std::vector<ShardFile>> {
    std::vector<ShardFile> files;
    for (int s = 0; s < index.num_shards(); ++s) {
      ShardFile file{internal::ShardFileName(s), index.ShardSize(s), ""};
      const fs::path path = staging / file.file;
      try {
        faiss::write_index(&index.shard_index(s), path.c_str());
      } catch (const std::exception& e) {
        return absl::InternalError(absl::StrCat(path.string(), ": FAISS write failed: ", e.what()));
      }
      absl::StatusOr<std::string> sha = common::Sha256HexOfFile(path);
      if (!sha.ok()) return sha.status();
      file.sha256 = *sha;
      files.push_back(file);
    }
    return files;
  };
  return internal::PublishGeneration(index.spec(), generation, index.erased_ids(), write_shards,
                                     dir);
}

absl::StatusOr<Manifest> ReadManifest(const fs::path& dir) {
  absl::StatusOr<Manifest> manifest = ParseManifest(dir / kManifestName);
  if (!manifest.ok()) return manifest.status();
  for (const ShardFile& shard : manifest->shards) {
    if (absl::Status s = VerifyFile(dir, shard.file, shard.sha256); !s.ok()) return s;
  }
  if (!manifest->erased_file.empty()) {
    if (absl::Status s = VerifyFile(dir, manifest->erased_file, manifest->erased_sha256); !s.ok()) {
      return s;
    }
  }
  return manifest;
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> LoadGeneration(const fs::path& dir) {
  return Load(dir, nullptr);
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> LoadGenerationShards(const fs::path& dir,
                                                                   const std::vector<int>& shards) {
  const std::set<int> wanted(shards.begin(), shards.end());
  return Load(dir, &wanted);
}

}  // namespace probity::index
