#include "probity/index/sharded_index.h"

#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "coarse_assignment.h"
#include "faiss_search.h"
#include "gpu_shard.h"
#include "hit_lists.h"
#include "probity/index/gpu.h"
#include "probity/index/index_spec.h"

namespace probity::index {

struct ShardedIndex::State {
  CollectionSpec spec;
  // A null shard is a placeholder for a shard that another server holds.
  std::vector<std::unique_ptr<faiss::Index>> shards;
  // Serializes searches on index types whose nprobe cannot be passed per call.
  std::vector<std::unique_ptr<std::mutex>> nprobe_locks;
  std::vector<int64_t> erased;  // sorted, unique
  // After PlaceOnGpus: the GPU copy of each held shard (null for placeholders); empty while
  // the collection is searched on the CPU. The CPU copies above stay authoritative.
  std::shared_ptr<GpuRuntime> gpu_runtime;
  std::vector<std::unique_ptr<internal::GpuShard>> gpu_shards;
  // True when every loaded shard (two or more) has the same CoarseFingerprint, computed once at
  // FromShards: Add and Remove change inverted lists only, never the quantizer or pre-transform,
  // and a new generation is a new ShardedIndex. CPU searches then run the coarse search once per
  // batch for all shards.
  bool identical_coarse_quantizers = false;
  // Benchmarks and tests switch the shared assignment off to compare with per-shard searches.
  std::atomic<bool> share_coarse_assignment{true};
};

namespace {

absl::Status FromException(const std::exception& e, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": FAISS error: ", e.what()));
}

absl::Status CheckRows(std::span<const float> data, int dim, absl::string_view what) {
  if (dim <= 0) return absl::InvalidArgumentError("dimension must be positive");
  if (data.size() % static_cast<size_t>(dim) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", data.size(), " floats is not a whole number of rows of ", dim));
  }
  return absl::OkStatus();
}

absl::Status CheckGpuParams(const SearchParams& params) {
  if (params.k > internal::kGpuMaxSelection || params.nprobe > internal::kGpuMaxSelection) {
    return absl::InvalidArgumentError(absl::StrCat("GPU shards answer k and nprobe up to ",
                                                   internal::kGpuMaxSelection, " (asked k ",
                                                   params.k, ", nprobe ", params.nprobe, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckParams(const SearchParams& params) {
  if (params.k <= 0) return absl::InvalidArgumentError("k must be positive");
  if (params.nprobe <= 0) return absl::InvalidArgumentError("nprobe must be positive");
  return absl::OkStatus();
}

// splitmix64's finalizer: consecutive ids spread evenly over the shards.
uint64_t MixId(int64_t id) {
  uint64_t z = static_cast<uint64_t>(id) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// True when the loaded shards (at least two) all have one CoarseFingerprint. Fingerprints are
// computed in parallel: each serializes a quantizer into SHA-256, which for a million-list
// HNSW quantizer is a few seconds per shard.
absl::StatusOr<bool> HaveIdenticalCoarseQuantizers(
    const std::vector<std::unique_ptr<faiss::Index>>& shards) {
  std::vector<const faiss::Index*> loaded;
  for (const auto& shard : shards) {
    if (shard) loaded.push_back(shard.get());
  }
  if (loaded.size() < 2) return false;
  std::vector<std::optional<std::string>> fingerprints(loaded.size());
  std::vector<std::string> errors(loaded.size());
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < loaded.size(); ++i) {
    try {
      fingerprints[i] = internal::CoarseFingerprint(*loaded[i]);
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  }
  for (const std::string& error : errors) {
    if (!error.empty()) {
      return absl::InternalError(absl::StrCat("fingerprinting coarse quantizers: ", error));
    }
  }
  if (!fingerprints[0]) return false;
  return std::all_of(fingerprints.begin(), fingerprints.end(),
                     [&](const auto& fingerprint) { return fingerprint == fingerprints[0]; });
}

}  // namespace

ShardedIndex::~ShardedIndex() = default;

absl::StatusOr<std::unique_ptr<ShardedIndex>> ShardedIndex::Train(const CollectionSpec& spec,
                                                                  std::span<const float> sample,
                                                                  int num_shards) {
  return Train(spec, sample, num_shards, TrainOptions{});
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> ShardedIndex::Train(const CollectionSpec& spec,
                                                                  std::span<const float> sample,
                                                                  int num_shards,
                                                                  bool faiss_verbose) {
  return Train(spec, sample, num_shards, TrainOptions{.faiss_verbose = faiss_verbose});
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> ShardedIndex::Train(const CollectionSpec& spec,
                                                                  std::span<const float> sample,
                                                                  int num_shards,
                                                                  const TrainOptions& options) {
  if (num_shards <= 0) return absl::InvalidArgumentError("the number of shards must be positive");
  if (absl::Status s = CheckRows(sample, spec.dim, "training sample"); !s.ok()) return s;
  // Refuse a spec that cannot work before hours of training, with a reason a user can act on.
  absl::StatusOr<SpecShape> shape = InspectSpec(spec);
  if (!shape.ok()) return shape.status();
  if (absl::Status s =
          CheckTrainingSize(spec, *shape, static_cast<int64_t>(sample.size() / spec.dim));
      !s.ok()) {
    return s;
  }
  std::vector<std::unique_ptr<faiss::Index>> shards;
  try {
    std::unique_ptr<faiss::Index> trained = internal::CreateIndex(spec);
    if (options.faiss_verbose) internal::SetVerbose(*trained, true);
    const int64_t rows = static_cast<int64_t>(sample.size() / spec.dim);
    if (!trained->is_trained) {
      if (rows == 0) return absl::InvalidArgumentError("training sample is empty");
      if (options.gpu_device >= 0) {
        absl::Status s = internal::TrainOnGpu(*trained, rows, sample.data(), options.gpu_device,
                                              options.gpu_train_pq);
        if (!s.ok()) return s;
      } else {
        trained->train(rows, sample.data());
      }
    }
    internal::SetVerbose(*trained, false);  // adding and searching stay quiet
    // Every shard is a copy of the same trained, empty index, so all shards share the coarse
    // quantizer and codebooks and their scores are directly comparable.
    for (int s = 0; s < num_shards; ++s) shards.push_back(internal::CopyIndex(*trained));
  } catch (const faiss::FaissException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot train spec '", spec.factory, "': ", e.what()));
  } catch (const std::exception& e) {
    return FromException(e, "training");
  }
  return FromShards(spec, std::move(shards), {});
}

absl::StatusOr<std::unique_ptr<ShardedIndex>> ShardedIndex::FromShards(
    const CollectionSpec& spec, std::vector<std::unique_ptr<faiss::Index>> shards,
    std::vector<int64_t> erased_ids) {
  if (shards.empty()) return absl::InvalidArgumentError("a collection needs at least one shard");
  for (size_t s = 0; s < shards.size(); ++s) {
    if (shards[s] && shards[s]->d != spec.dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard ", s, " has dimension ", shards[s]->d, ", the spec says ", spec.dim));
    }
  }
  std::sort(erased_ids.begin(), erased_ids.end());
  erased_ids.erase(std::unique(erased_ids.begin(), erased_ids.end()), erased_ids.end());
  auto state = std::make_unique<State>();
  state->spec = spec;
  state->shards = std::move(shards);
  for (size_t s = 0; s < state->shards.size(); ++s) {
    state->nprobe_locks.push_back(std::make_unique<std::mutex>());
  }
  state->erased = std::move(erased_ids);
  absl::StatusOr<bool> identical = HaveIdenticalCoarseQuantizers(state->shards);
  if (!identical.ok()) return identical.status();
  state->identical_coarse_quantizers = *identical;
  std::unique_ptr<ShardedIndex> index(new ShardedIndex());
  index->state_ = std::move(state);
  return index;
}

absl::Status ShardedIndex::Add(std::span<const float> vectors, std::span<const int64_t> ids) {
  const int dim = state_->spec.dim;
  if (absl::Status s = CheckRows(vectors, dim, "vectors"); !s.ok()) return s;
  if (vectors.size() / dim != ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(vectors.size() / dim, " vectors but ", ids.size(), " ids"));
  }
  std::unique_lock lock(mutex_);
  const int num_shards = this->num_shards();
  std::vector<std::vector<float>> shard_vectors(num_shards);
  std::vector<std::vector<int64_t>> shard_ids(num_shards);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (std::binary_search(state_->erased.begin(), state_->erased.end(), ids[i])) {
      return absl::FailedPreconditionError(
          absl::StrCat("id ", ids[i], " was erased and cannot be added again"));
    }
    const int shard = ShardOf(ids[i]);
    if (!state_->shards[shard]) {
      return absl::FailedPreconditionError(
          absl::StrCat("id ", ids[i], " belongs to shard ", shard, ", which is not loaded here"));
    }
    shard_ids[shard].push_back(ids[i]);
    const float* row = vectors.data() + i * dim;
    shard_vectors[shard].insert(shard_vectors[shard].end(), row, row + dim);
  }
  for (int s = 0; s < num_shards; ++s) {
    if (shard_ids[s].empty()) continue;
    const int64_t n = static_cast<int64_t>(shard_ids[s].size());
    internal::GpuShard* gpu = state_->gpu_shards.empty() ? nullptr : state_->gpu_shards[s].get();
    // GPU copies first: if the device has no room, nothing has changed anywhere. If an add
    // fails after that, the GPU copies may disagree with each other and with the CPU copy,
    // which is unchanged: clone it again so that they all agree.
    if (gpu != nullptr) {
      if (absl::Status room = gpu->CheckRoomToAdd(n); !room.ok()) return room;
      if (absl::Status status = gpu->Add(n, shard_vectors[s].data(), shard_ids[s].data());
          !status.ok()) {
        gpu->Reclone(*state_->shards[s]).IgnoreError();
        return status;
      }
    }
    try {
      state_->shards[s]->add_with_ids(n, shard_vectors[s].data(), shard_ids[s].data());
    } catch (const std::exception& e) {
      // The GPU copy has vectors the CPU copy lacks: clone the CPU copy again so they agree.
      if (gpu != nullptr) gpu->Reclone(*state_->shards[s]).IgnoreError();
      return FromException(e, "adding vectors");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<HitList>> ShardedIndex::Search(std::span<const float> queries,
                                                          const SearchParams& params) const {
  if (absl::Status s = CheckParams(params); !s.ok()) return s;
  if (absl::Status s = CheckRows(queries, state_->spec.dim, "queries"); !s.ok()) return s;
  const int dim = state_->spec.dim;
  const int64_t num_queries = static_cast<int64_t>(queries.size() / dim);
  std::vector<int> loaded;
  for (int s = 0; s < num_shards(); ++s) {
    if (state_->shards[s]) loaded.push_back(s);
  }
  std::shared_lock lock(mutex_);
  if (!state_->gpu_shards.empty()) {
    absl::StatusOr<std::vector<std::vector<HitList>>> per_shard =
        SearchGpuShardsLocked(loaded, queries, params);
    if (!per_shard.ok()) return per_shard.status();
    // One shard's lists are already its ranked top k (ToHitLists): nothing to merge.
    if (per_shard->size() == 1) return std::move(per_shard->front());
    std::vector<HitList> merged = MergeTopK(*per_shard, params.k, state_->spec.metric);
    merged.resize(queries.size() / state_->spec.dim);
    return merged;
  }
  const bool shared = SharesCoarseAssignmentLocked();
  // One parallel region over blocks of queries, each block searching every shard (FAISS's own
  // parallel loop then runs serially inside). One region per shard instead would pay a
  // fork/join per shard, which dominates on a busy machine with many shards.
  const int64_t threads = omp_get_max_threads();
  const int64_t block = std::max<int64_t>(1, (num_queries + 4 * threads - 1) / (4 * threads));
  const int64_t num_blocks = (num_queries + block - 1) / block;
  std::vector<HitList> merged(num_queries);
  std::vector<absl::Status> errors(num_blocks);
#pragma omp parallel for schedule(dynamic) if (num_blocks > 1 && loaded.size() > 1)
  for (int64_t b = 0; b < num_blocks; ++b) {
    const int64_t first = b * block;
    const int64_t count = std::min(block, num_queries - first);
    const auto block_queries = queries.subspan(first * dim, count * dim);
    absl::StatusOr<std::vector<std::vector<HitList>>> per_shard =
        shared ? SearchSharedAssignmentLocked(loaded, block_queries, params)
               : SearchEachShardLocked(loaded, block_queries, params);
    if (!per_shard.ok()) {
      errors[b] = per_shard.status();
      continue;
    }
    std::vector<HitList> block_merged = MergeTopK(*per_shard, params.k, state_->spec.metric);
    block_merged.resize(count);
    std::move(block_merged.begin(), block_merged.end(), merged.begin() + first);
  }
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  return merged;
}

absl::StatusOr<std::vector<HitList>> ShardedIndex::SearchShard(int shard,
                                                               std::span<const float> queries,
                                                               const SearchParams& params) const {
  if (absl::Status s = CheckParams(params); !s.ok()) return s;
  if (absl::Status s = CheckRows(queries, state_->spec.dim, "queries"); !s.ok()) return s;
  std::shared_lock lock(mutex_);
  return SearchShardLocked(shard, queries, params);
}

absl::StatusOr<std::vector<std::vector<HitList>>> ShardedIndex::SearchShards(
    std::span<const int> shards, std::span<const float> queries, const SearchParams& params) const {
  if (absl::Status s = CheckParams(params); !s.ok()) return s;
  if (absl::Status s = CheckRows(queries, state_->spec.dim, "queries"); !s.ok()) return s;
  if (shards.empty()) return absl::InvalidArgumentError("no shard to search");
  for (int shard : shards) {
    if (!HasShard(shard)) {
      return absl::FailedPreconditionError(
          absl::StrCat("shard ", shard, " is not held here (", num_shards(), " shards)"));
    }
  }
  const std::vector<int> listed(shards.begin(), shards.end());
  std::shared_lock lock(mutex_);
  if (!state_->gpu_shards.empty()) return SearchGpuShardsLocked(listed, queries, params);
  // Shards of one training have identical quantizers (checked over every held shard at load),
  // so any subset of them may share the assignment too.
  if (listed.size() > 1 && SharesCoarseAssignmentLocked()) {
    return SearchSharedAssignmentLocked(listed, queries, params);
  }
  return SearchEachShardLocked(listed, queries, params);
}

absl::StatusOr<std::vector<HitList>> ShardedIndex::SearchShardLocked(
    int shard, std::span<const float> queries, const SearchParams& params) const {
  if (shard < 0 || shard >= num_shards()) {
    return absl::OutOfRangeError(absl::StrCat("no shard ", shard, " (", num_shards(), " shards)"));
  }
  if (!state_->shards[shard]) {
    return absl::FailedPreconditionError(absl::StrCat("shard ", shard, " is not loaded here"));
  }
  const int64_t num_queries = static_cast<int64_t>(queries.size() / state_->spec.dim);
  const size_t k = static_cast<size_t>(params.k);
  std::vector<float> distances(num_queries * k);
  std::vector<int64_t> labels(num_queries * k);
  if (!state_->gpu_shards.empty()) {
    if (absl::Status s = CheckGpuParams(params); !s.ok()) return s;
    absl::Status searched = state_->gpu_shards[shard]->Search(
        num_queries, queries.data(), params.k, params.nprobe, distances.data(), labels.data());
    if (!searched.ok()) {
      return absl::Status(searched.code(),
                          absl::StrCat("searching shard ", shard, ": ", searched.message()));
    }
  } else {
    try {
      internal::SearchWithNprobe(*state_->shards[shard], num_queries, queries.data(), params.k,
                                 params.nprobe, distances.data(), labels.data(),
                                 *state_->nprobe_locks[shard]);
    } catch (const std::exception& e) {
      return FromException(e, absl::StrCat("searching shard ", shard));
    }
  }
  return internal::ToHitLists(shard, num_queries, params, state_->spec.metric, distances, labels);
}

absl::StatusOr<std::vector<std::vector<HitList>>> ShardedIndex::SearchEachShardLocked(
    const std::vector<int>& loaded, std::span<const float> queries,
    const SearchParams& params) const {
  std::vector<std::vector<HitList>> per_shard;
  for (int s : loaded) {
    absl::StatusOr<std::vector<HitList>> hits = SearchShardLocked(s, queries, params);
    if (!hits.ok()) return hits.status();
    per_shard.push_back(*std::move(hits));
  }
  return per_shard;
}

absl::StatusOr<std::vector<std::vector<HitList>>> ShardedIndex::SearchSharedAssignmentLocked(
    const std::vector<int>& loaded, std::span<const float> queries,
    const SearchParams& params) const {
  const int64_t num_queries = static_cast<int64_t>(queries.size() / state_->spec.dim);
  const size_t k = static_cast<size_t>(params.k);
  std::vector<std::vector<HitList>> per_shard;
  try {
    // Any loaded shard's quantizer will do: they are identical (identical_coarse_quantizers).
    const internal::CoarseAssignment assignment = internal::AssignCoarse(
        *state_->shards[loaded.front()], num_queries, queries.data(), params.nprobe);
    std::vector<float> distances(num_queries * k);
    std::vector<int64_t> labels(num_queries * k);
    for (int s : loaded) {
      internal::SearchPreassigned(*state_->shards[s], assignment, params.k, distances.data(),
                                  labels.data());
      per_shard.push_back(
          internal::ToHitLists(s, num_queries, params, state_->spec.metric, distances, labels));
    }
  } catch (const std::exception& e) {
    return FromException(e, "searching shards with a shared coarse assignment");
  }
  return per_shard;
}

bool ShardedIndex::SharesCoarseAssignment() const {
  std::shared_lock lock(mutex_);
  return SharesCoarseAssignmentLocked();
}

bool ShardedIndex::SharesCoarseAssignmentLocked() const {
  return state_->identical_coarse_quantizers && state_->share_coarse_assignment.load() &&
         state_->gpu_shards.empty();
}

void ShardedIndex::SetShareCoarseAssignment(bool share) {
  state_->share_coarse_assignment.store(share);
}

absl::StatusOr<int64_t> ShardedIndex::Remove(std::span<const int64_t> ids) {
  std::unique_lock lock(mutex_);
  for (int s = 0; s < num_shards(); ++s) {
    if (state_->shards[s] && !internal::SupportsRemove(*state_->shards[s])) {
      return absl::UnimplementedError(absl::StrCat(
          "spec '", state_->spec.factory,
          "' cannot remove ids in FAISS 1.7.3 (fast-scan lists); use an 8-bit PQ spec"));
    }
  }
  int64_t removed = 0;
  absl::Status gpu_status;
  try {
    std::vector<std::vector<int64_t>> shard_ids(num_shards());
    for (int64_t id : ids) shard_ids[ShardOf(id)].push_back(id);
    for (int s = 0; s < num_shards(); ++s) {
      if (!state_->shards[s] || shard_ids[s].empty()) continue;
      faiss::IDSelectorBatch selector(shard_ids[s].size(), shard_ids[s].data());
      const int64_t removed_here = static_cast<int64_t>(state_->shards[s]->remove_ids(selector));
      removed += removed_here;
      // GPU indexes cannot remove ids in FAISS 1.7.3: the shard is cloned again from its CPU
      // copy (under this exclusive lock, so no search sees a half-cloned shard). If that fails
      // the shard answers UNAVAILABLE instead of returning erased vectors.
      if (removed_here > 0 && !state_->gpu_shards.empty() && gpu_status.ok()) {
        gpu_status = state_->gpu_shards[s]->Reclone(*state_->shards[s]);
      }
    }
  } catch (const std::exception& e) {
    return FromException(e, "removing ids");
  }
  // Ids are remembered even when not stored yet, so that a later Add cannot bring them in.
  state_->erased.insert(state_->erased.end(), ids.begin(), ids.end());
  std::sort(state_->erased.begin(), state_->erased.end());
  state_->erased.erase(std::unique(state_->erased.begin(), state_->erased.end()),
                       state_->erased.end());
  if (!gpu_status.ok()) return gpu_status;
  return removed;
}

const CollectionSpec& ShardedIndex::spec() const { return state_->spec; }

int ShardedIndex::num_shards() const { return static_cast<int>(state_->shards.size()); }

int ShardedIndex::ShardOf(int64_t id) const {
  return static_cast<int>(MixId(id) % static_cast<uint64_t>(num_shards()));
}

int64_t ShardedIndex::ShardSize(int shard) const {
  std::shared_lock lock(mutex_);
  if (shard < 0 || shard >= num_shards() || !state_->shards[shard]) return 0;
  return state_->shards[shard]->ntotal;
}

int64_t ShardedIndex::TotalSize() const {
  int64_t total = 0;
  for (int s = 0; s < num_shards(); ++s) total += ShardSize(s);
  return total;
}

absl::Status ShardedIndex::PlaceOnGpus(std::shared_ptr<GpuRuntime> runtime) {
  if (runtime == nullptr) return absl::InvalidArgumentError("no GPU runtime");
  std::unique_lock lock(mutex_);
  if (!state_->gpu_shards.empty()) {
    return absl::FailedPreconditionError("the collection is already placed on GPUs");
  }
  std::vector<const faiss::Index*> shards;
  for (const auto& shard : state_->shards) shards.push_back(shard.get());
  absl::StatusOr<std::vector<std::unique_ptr<internal::GpuShard>>> placed =
      internal::PlaceShardsOnGpus(*runtime, shards);
  if (!placed.ok()) return placed.status();
  state_->gpu_shards = *std::move(placed);
  state_->gpu_runtime = std::move(runtime);
  return absl::OkStatus();
}

int ShardedIndex::ShardDevice(int shard) const {
  std::shared_lock lock(mutex_);
  if (shard < 0 || shard >= num_shards() || state_->gpu_shards.empty() ||
      !state_->gpu_shards[shard]) {
    return -1;
  }
  return state_->gpu_shards[shard]->device();
}

absl::StatusOr<std::vector<std::vector<HitList>>> ShardedIndex::SearchGpuShardsLocked(
    const std::vector<int>& loaded, std::span<const float> queries,
    const SearchParams& params) const {
  // The whole batch goes to each shard at once (a GPU wants large batches); shards on different
  // GPUs run at the same time, shards on one GPU queue on its mutex.
  std::vector<std::vector<HitList>> per_shard(loaded.size());
  std::vector<absl::Status> errors(loaded.size());
#pragma omp parallel for schedule(dynamic) if (loaded.size() > 1)
  for (size_t i = 0; i < loaded.size(); ++i) {
    absl::StatusOr<std::vector<HitList>> hits = SearchShardLocked(loaded[i], queries, params);
    if (hits.ok()) {
      per_shard[i] = *std::move(hits);
    } else {
      errors[i] = hits.status();
    }
  }
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  return per_shard;
}

const std::vector<int64_t>& ShardedIndex::erased_ids() const { return state_->erased; }

const faiss::Index& ShardedIndex::shard_index(int shard) const { return *state_->shards[shard]; }

bool ShardedIndex::HasShard(int shard) const {
  return shard >= 0 && shard < num_shards() && state_->shards[shard] != nullptr;
}

}  // namespace probity::index
