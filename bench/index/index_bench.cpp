// Probity's ShardedIndex against FAISS in-process on identical data: search per nprobe, batch
// size and shard count, and add throughput. Each Probity benchmark has a FAISS twin with the
// same arguments; RESULTS.md reports Probity's time over FAISS's time. Sharded searches run
// with and without the shared coarse assignment, so one run gives both ratios.
//
// Data: a synthetic face-like gallery (unit vectors, inner product), 50,000 vectors in 128
// dimensions, IVF256,PQ32 trained on 10,000 of them.
#include <benchmark/benchmark.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/clone_index.h>
#include <faiss/index_factory.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>

#include "probity/index/generation.h"
#include "probity/index/sharded_index.h"
#include "probity/index/synthetic.h"

namespace probity::index {
namespace {

constexpr int kDim = 128;
constexpr char kSpec[] = "IVF256,PQ32";
constexpr int64_t kTrainRows = 10000;

const SyntheticGallery& Data() {
  static const SyntheticGallery data = [] {
    SyntheticOptions options;
    options.identities = 5000;
    options.images_per_identity = 10;
    options.num_queries = 1024;
    options.dim = kDim;
    options.intrinsic_dim = 64;
    options.ground_truth_k = 1;
    return *GenerateSyntheticGallery(options);
  }();
  return data;
}

std::vector<int64_t> Ids(int64_t count) {
  std::vector<int64_t> ids(count);
  for (int64_t i = 0; i < count; ++i) ids[i] = i;
  return ids;
}

std::span<const float> TrainSample() {
  return std::span<const float>(Data().gallery).first(kTrainRows * kDim);
}

// One filled Probity collection per shard count, built on first use.
ShardedIndex& Collection(int shards) {
  static std::map<int, std::unique_ptr<ShardedIndex>> cache;
  auto& slot = cache[shards];
  if (!slot) {
    slot = *ShardedIndex::Train({kSpec, Metric::kInnerProduct, kDim}, TrainSample(), shards);
    (void)slot->Add(Data().gallery, Ids(Data().gallery_labels.size()));
  }
  return *slot;
}

// The reference's untrained index. Polysemous training is skipped as Probity skips it: it
// changes no search result (polysemous_ht stays 0) and dominated the benchmark's set-up time.
std::unique_ptr<faiss::Index> UntrainedFaissIndex() {
  std::unique_ptr<faiss::Index> index(
      faiss::index_factory(kDim, kSpec, faiss::METRIC_INNER_PRODUCT));
  if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(index.get())) {
    ivfpq->do_polysemous_training = false;
  }
  return index;
}

// The reference: one plain FAISS index with the same spec and data.
faiss::Index& FaissIndex() {
  static std::unique_ptr<faiss::Index> index = [] {
    std::unique_ptr<faiss::Index> built = UntrainedFaissIndex();
    const int64_t rows = static_cast<int64_t>(Data().gallery_labels.size());
    built->train(kTrainRows, TrainSample().data());
    const std::vector<int64_t> ids = Ids(rows);
    built->add_with_ids(rows, Data().gallery.data(), ids.data());
    return built;
  }();
  return *index;
}

std::span<const float> Queries(int64_t batch) {
  return std::span<const float>(Data().queries).first(batch * kDim);
}

// Args: nprobe, batch size, shards, shared (1: one coarse assignment per batch for all shards,
// ShardedIndex's default; 0: the coarse search repeated per shard, as before it existed).
void BM_ProbitySearch(benchmark::State& state) {
  ShardedIndex& index = Collection(static_cast<int>(state.range(2)));
  index.SetShareCoarseAssignment(state.range(3) != 0);
  SearchParams params;
  params.k = 10;
  params.nprobe = static_cast<int>(state.range(0));
  const auto queries = Queries(state.range(1));
  for (auto _ : state) {
    auto hits = index.Search(queries, params);
    benchmark::DoNotOptimize(hits);
  }
  state.SetItemsProcessed(state.iterations() * state.range(1));
}

// Args: nprobe, batch size (shards ignored: one index).
void BM_FaissSearch(benchmark::State& state) {
  faiss::Index& index = FaissIndex();
  const int64_t batch = state.range(1);
  faiss::SearchParametersIVF params;
  params.nprobe = static_cast<int>(state.range(0));
  std::vector<float> distances(batch * 10);
  std::vector<int64_t> labels(batch * 10);
  const auto queries = Queries(batch);
  for (auto _ : state) {
    index.search(batch, queries.data(), 10, distances.data(), labels.data(), &params);
    benchmark::DoNotOptimize(labels.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void SearchArgs(benchmark::internal::Benchmark* bench, bool sharded) {
  for (int nprobe : {1, 4, 16, 64}) bench->Args({nprobe, 256, 1, 1});
  for (int batch : {1, 16, 1024}) bench->Args({16, batch, 1, 1});
  if (sharded) {
    for (int shared : {0, 1}) {
      for (int shards : {2, 4, 8}) bench->Args({16, 256, shards, shared});
    }
  }
}

BENCHMARK(BM_ProbitySearch)
    ->Apply([](auto* b) { SearchArgs(b, true); })
        -> ArgNames({"nprobe", "batch", "shards", "shared"}) -> Unit(benchmark::kMicrosecond)
            -> UseRealTime();
BENCHMARK(BM_FaissSearch)
    ->Apply([](auto* b) { SearchArgs(b, false); })
        -> ArgNames({"nprobe", "batch", "shards", "shared"}) -> Unit(benchmark::kMicrosecond)
            -> UseRealTime();

// Add throughput of 20,000 vectors into a freshly trained, empty collection.
constexpr int64_t kAddRows = 20000;

// Each iteration adds into a fresh empty copy of the trained collection: Probity's copy comes
// from an empty generation directory, FAISS's from clone_index, both outside the timing.
void BM_ProbityAdd(benchmark::State& state) {
  const int shards = static_cast<int>(state.range(0));
  const auto trained =
      ShardedIndex::Train({kSpec, Metric::kInnerProduct, kDim}, TrainSample(), shards);
  const auto empty = std::filesystem::temp_directory_path() /
                     ("probity-index-bench-" + std::to_string(::getpid()));
  if (!trained.ok() || !WriteGeneration(**trained, 0, empty).ok()) {
    state.SkipWithError("cannot prepare an empty collection");
    return;
  }
  const auto vectors = std::span<const float>(Data().gallery).first(kAddRows * kDim);
  const std::vector<int64_t> ids = Ids(kAddRows);
  for (auto _ : state) {
    state.PauseTiming();
    auto index = LoadGeneration(empty);
    state.ResumeTiming();
    if (!index.ok() || !(*index)->Add(vectors, ids).ok()) state.SkipWithError("add failed");
  }
  std::filesystem::remove_all(empty);
  state.SetItemsProcessed(state.iterations() * kAddRows);
}

void BM_FaissAdd(benchmark::State& state) {
  std::unique_ptr<faiss::Index> trained = UntrainedFaissIndex();
  trained->train(kTrainRows, TrainSample().data());
  const auto vectors = std::span<const float>(Data().gallery).first(kAddRows * kDim);
  const std::vector<int64_t> ids = Ids(kAddRows);
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<faiss::Index> index(faiss::clone_index(trained.get()));
    state.ResumeTiming();
    index->add_with_ids(kAddRows, vectors.data(), ids.data());
  }
  state.SetItemsProcessed(state.iterations() * kAddRows);
}

BENCHMARK(BM_ProbityAdd)
    ->Arg(1)
    ->Arg(4)
    ->ArgName("shards")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);
BENCHMARK(BM_FaissAdd)
    ->Arg(1)
    ->ArgName("shards")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
}  // namespace probity::index

BENCHMARK_MAIN();
