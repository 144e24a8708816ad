// HNSW coarse quantizers ("IVF1048576_HNSW32,PQ64" at billion scale) end to end on a small
// version, spec validation, and the memory arithmetic of the billion-scale specs.
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "faiss_search.h"
#include "probity/index/evaluation.h"
#include "probity/index/generation.h"
#include "probity/index/index_spec.h"
#include "probity/index/sharded_index.h"
#include "probity/index/synthetic.h"
#include "test_data.h"

namespace probity::index {
namespace {

using ::testing::HasSubstr;

const bool kSingleThreaded = testing::UseOneThread();

// 40,000 face-like vectors in 64 dimensions: enough for 1024 lists (39 x 1024 = 39,936). The PQ
// has 4-bit codes so that its training (16 centroids per sub-quantizer) costs little next to
// the coarse k-means, which is what these tests are about.
const SyntheticGallery& Gallery() {
  static const SyntheticGallery gallery = [] {
    SyntheticOptions options;
    options.identities = 4000;
    options.images_per_identity = 10;
    options.num_queries = 200;
    options.dim = 64;
    options.intrinsic_dim = 48;
    options.ground_truth_k = 10;
    options.seed = 7;
    auto made = GenerateSyntheticGallery(options);
    EXPECT_TRUE(made.ok()) << made.status();
    return *std::move(made);
  }();
  return gallery;
}

// Trained on the minimum FAISS asks for, 39 x nlist vectors, and filled with all 40,000; built
// once per spec and process (training dominates the time of these tests).
const ShardedIndex* BuildOnGallery(const std::string& factory, int64_t nlist) {
  static std::map<std::string, std::unique_ptr<ShardedIndex>> built;
  auto& slot = built[factory];
  if (slot) return slot.get();
  const SyntheticGallery& g = Gallery();
  const auto sample =
      std::span<const float>(g.gallery).first(kMinTrainingPointsPerList * nlist * g.dim);
  auto index = ShardedIndex::Train({factory, Metric::kInnerProduct, g.dim}, sample, 2);
  EXPECT_TRUE(index.ok()) << index.status();
  if (!index.ok()) return nullptr;
  std::vector<int64_t> ids(g.gallery_labels.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  EXPECT_TRUE((*index)->Add(g.gallery, ids).ok());
  slot = *std::move(index);
  return slot.get();
}

double Recall(const ShardedIndex& index, int nprobe) {
  const SyntheticGallery& g = Gallery();
  SearchParams params;
  params.k = 10;
  params.nprobe = nprobe;
  auto hits = index.Search(g.queries, params);
  EXPECT_TRUE(hits.ok()) << hits.status();
  return hits.ok() ? RecallAtK(*hits, g.ground_truth, g.ground_truth_k, 10) : 0;
}

TEST(HnswCoarseQuantizerTest, TrainsAddsSearchesAndMatchesTheFlatQuantizersRecall) {
  const ShardedIndex* flat = BuildOnGallery("IVF1024,PQ16x4", 1024);
  const ShardedIndex* hnsw = BuildOnGallery("IVF1024_HNSW32,PQ16x4", 1024);
  ASSERT_TRUE(flat && hnsw);
  const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(&hnsw->shard_index(0));
  ASSERT_NE(ivf, nullptr);
  const auto* graph = dynamic_cast<const faiss::IndexHNSWFlat*>(ivf->quantizer);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->ntotal, 1024);
  EXPECT_EQ(graph->hnsw.efSearch, internal::kHnswMinEfSearch);
  EXPECT_EQ(hnsw->TotalSize(), static_cast<int64_t>(Gallery().gallery_labels.size()));
  for (int nprobe : {4, 16}) {
    const double flat_recall = Recall(*flat, nprobe);
    const double hnsw_recall = Recall(*hnsw, nprobe);
    // The HNSW graph finds (nearly) the same lists as the exhaustive centroid search.
    EXPECT_NEAR(hnsw_recall, flat_recall, 0.02) << "nprobe " << nprobe;
    std::cout << "recall@10 at nprobe " << nprobe << ": flat quantizer " << flat_recall
              << ", HNSW quantizer " << hnsw_recall << "\n";
    EXPECT_GT(flat_recall, 0.2) << "nprobe " << nprobe;
  }
  EXPECT_GT(Recall(*hnsw, 16), Recall(*hnsw, 1));
}

TEST(HnswCoarseQuantizerTest, NprobeOfAllListsIsExhaustive) {
  // efSearch follows nprobe (max(2 x nprobe, 64)), so probing every list finds the exact top-k.
  const std::vector<float> base = testing::RandomRows(2000, 16, 1);
  const std::vector<float> queries = testing::RandomRows(20, 16, 2);
  auto index = ShardedIndex::Train({"IVF32_HNSW32,Flat", Metric::kInnerProduct, 16}, base, 2);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_TRUE((*index)->Add(base, testing::SequentialIds(2000)).ok());
  SearchParams params;
  params.k = 10;
  params.nprobe = 32;
  auto hits = (*index)->Search(queries, params);
  ASSERT_TRUE(hits.ok()) << hits.status();
  auto exact = ExactTopK(Metric::kInnerProduct, 16, base, queries, 10);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(RecallAtK(*hits, *exact, 10, 10), 1.0);
}

TEST(HnswCoarseQuantizerTest, EfSearchIsTwiceNprobeAtLeast64WithoutOverflow) {
  EXPECT_EQ(internal::HnswEfSearch(1), internal::kHnswMinEfSearch);
  EXPECT_EQ(internal::HnswEfSearch(100), 200);
  EXPECT_EQ(internal::HnswEfSearch(std::numeric_limits<int>::max()),
            std::numeric_limits<int>::max());
}

TEST(HnswCoarseQuantizerTest, GenerationFilesAreFaissIndexesWithTheHnswQuantizer) {
  const ShardedIndex* index = BuildOnGallery("IVF256_HNSW32,PQ16x4", 256);
  ASSERT_TRUE(index);
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteGeneration(*index, 1, dir.path() / "gen-1").ok());
  auto manifest = ReadManifest(dir.path() / "gen-1");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  // What faiss.read_index does (the Python call wraps this function).
  std::unique_ptr<faiss::Index> shard(
      faiss::read_index((dir.path() / "gen-1" / manifest->shards[0].file).c_str()));
  const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(shard.get());
  ASSERT_NE(ivf, nullptr);
  EXPECT_NE(dynamic_cast<const faiss::IndexHNSWFlat*>(ivf->quantizer), nullptr);
  EXPECT_EQ(ivf->ntotal, manifest->shards[0].count);

  auto loaded = LoadGeneration(dir.path() / "gen-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(Recall(**loaded, 16), Recall(*index, 16));
  // `probity eval`'s measure over the loaded generation.
  EvalInput input;
  input.queries = Gallery().queries;
  input.ground_truth = Gallery().ground_truth;
  input.truth_k = Gallery().ground_truth_k;
  input.k = 10;
  input.nprobes = {1, 16};
  auto rows = Evaluate(**loaded, input);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_LT((*rows)[0].recall, (*rows)[1].recall);
}

TEST(SpecValidationTest, RefusesUnknownSpecsIndivisiblePqAndTooFewTrainingVectors) {
  auto unknown = InspectSpec({"IVF1024,NoSuchCodec", Metric::kInnerProduct, 64});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown or unsupported FAISS factory spec"));
  EXPECT_THAT(unknown.status().message(), Not(HasSubstr(".cpp:")));

  auto indivisible = InspectSpec({"IVF1024_HNSW32,PQ60", Metric::kInnerProduct, 64});
  EXPECT_EQ(indivisible.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(indivisible.status().message(), HasSubstr("not divisible by the PQ's 60"));

  const std::vector<float> sample = testing::RandomRows(1000, 64, 1);
  auto too_few =
      ShardedIndex::Train({"IVF1024_HNSW32,PQ16x4", Metric::kInnerProduct, 64}, sample, 2);
  EXPECT_EQ(too_few.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_few.status().message(), HasSubstr("39936 training vectors, got 1000"));
  auto train_unknown = ShardedIndex::Train({"IVF16,NoSuchCodec", Metric::kL2, 64}, sample, 1);
  EXPECT_EQ(train_unknown.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SpecValidationTest, BillionScaleSpecsParse) {
  for (const auto& [factory, nlist] :
       {std::pair<std::string, int64_t>{"IVF262144_HNSW32,PQ64", 262144},
        {"IVF1048576_HNSW32,PQ64", 1048576}}) {
    auto shape = InspectSpec({factory, Metric::kInnerProduct, 512});
    ASSERT_TRUE(shape.ok()) << shape.status();
    EXPECT_EQ(shape->nlist, nlist) << factory;
    EXPECT_EQ(shape->coarse, CoarseQuantizerKind::kHnsw) << factory;
    EXPECT_EQ(shape->hnsw_m, 32) << factory;
    EXPECT_EQ(shape->pq_m, 64) << factory;
    EXPECT_EQ(shape->code_size, 64) << factory;
    EXPECT_FALSE(shape->precomputed_table) << factory << ": inner product needs no table";
    EXPECT_TRUE(CheckTrainingSize({factory, Metric::kInnerProduct, 512}, *shape, 39 * nlist).ok());
    EXPECT_FALSE(
        CheckTrainingSize({factory, Metric::kInnerProduct, 512}, *shape, 39 * nlist - 1).ok());
  }
  // L2 with residuals: FAISS precomputes nlist x m x 256 floats only below its 2 GiB cap.
  auto small_l2 = InspectSpec({"IVF4096,PQ64", Metric::kL2, 512});
  ASSERT_TRUE(small_l2.ok());
  EXPECT_TRUE(small_l2->precomputed_table);
  auto big_l2 = InspectSpec({"IVF1048576_HNSW32,PQ64", Metric::kL2, 512});
  ASSERT_TRUE(big_l2.ok());
  EXPECT_FALSE(big_l2->precomputed_table);
}

TEST(SpecValidationTest, BillionScaleMemoryArithmetic) {
  auto shape = InspectSpec({"IVF1048576_HNSW32,PQ64", Metric::kInnerProduct, 512});
  ASSERT_TRUE(shape.ok()) << shape.status();
  const int64_t vectors = 1'000'000'000;
  const CpuMemoryEstimate estimate = EstimateCpuMemory(*shape, vectors, 8);
  EXPECT_EQ(estimate.codes, 64 * vectors);  // PQ64: 64 bytes per vector
  EXPECT_EQ(estimate.ids, 8 * vectors);
  // 2^20 centroids of 512 float32 (2 GiB), plus 2 x 32 level-0 neighbours and 32/31 upper
  // neighbours of 4 bytes, a level and an offset per node.
  const double graph = (2 * 32 + 32.0 / 31) * 4 + 4 + 8;
  EXPECT_NEAR(static_cast<double>(estimate.coarse_quantizer), 1048576.0 * (512 * 4 + graph), 1);
  EXPECT_EQ(estimate.pq_codebooks, 256 * 512 * 4);
  EXPECT_EQ(estimate.precomputed_table, 0);
  EXPECT_EQ(estimate.total(), estimate.codes + estimate.ids + 8 * estimate.per_shard());
}

TEST(SpecValidationTest, HnswQuantizerEstimateMatchesTheTrainedQuantizer) {
  const ShardedIndex* index = BuildOnGallery("IVF256_HNSW32,PQ16x4", 256);
  ASSERT_TRUE(index);
  auto shape = InspectSpec(index->spec());
  ASSERT_TRUE(shape.ok());
  const CpuMemoryEstimate estimate = EstimateCpuMemory(*shape, index->TotalSize(), 2);
  // The serialized quantizer holds exactly its centroids and graph arrays.
  const auto* ivf = internal::FindIvf(index->shard_index(0));
  ASSERT_NE(ivf, nullptr);
  faiss::VectorIOWriter writer;
  faiss::write_index(ivf->quantizer, &writer);
  const double actual = static_cast<double>(writer.data.size());
  EXPECT_NEAR(static_cast<double>(estimate.coarse_quantizer), actual, 0.03 * actual);
}

}  // namespace
}  // namespace probity::index
