// Exact search over the real siftsmall set (10,000 SIFT descriptors, L2) must reproduce its
// published ground truth; only distance ties may swap ids.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "probity/index/embedding_io.h"
#include "probity/index/sharded_index.h"
#include "test_data.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;

const bool kSingleThreaded = testing::UseOneThread();

fs::path SiftDir() {
  const char* source = std::getenv("PROBITY_SOURCE_DIR");
  return fs::path(source != nullptr ? source : ".") / ".." / "shared" / "data" / "siftsmall";
}

float SquaredL2(const float* a, const float* b, int dim) {
  float sum = 0;
  for (int i = 0; i < dim; ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return sum;
}

TEST(SiftSmallTest, ExactShardedSearchReproducesTheGroundTruth) {
  const fs::path dir = SiftDir();
  if (!fs::exists(dir / "siftsmall_base.fvecs")) {
    GTEST_SKIP() << "siftsmall is not in ../shared/data/siftsmall";
  }
  auto base = ReadFloatMatrix(dir / "siftsmall_base.fvecs");
  auto queries = ReadFloatMatrix(dir / "siftsmall_query.fvecs");
  auto truth = ReadIntMatrix(dir / "siftsmall_groundtruth.ivecs");
  ASSERT_TRUE(base.ok() && queries.ok() && truth.ok());
  ASSERT_EQ(base->rows, 10000);
  ASSERT_EQ(queries->rows, 100);
  const int dim = base->dim;
  const int k = 100;
  ASSERT_EQ(truth->dim, k);

  auto index = ShardedIndex::Train({"Flat", Metric::kL2, dim}, {}, 3);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_TRUE((*index)->Add(base->data, testing::SequentialIds(base->rows)).ok());
  SearchParams params;
  params.k = k;
  auto hits = (*index)->Search(queries->data, params);
  ASSERT_TRUE(hits.ok());
  int exact_ids = 0;
  for (int q = 0; q < 100; ++q) {
    ASSERT_EQ((*hits)[q].size(), static_cast<size_t>(k));
    const float* query = &queries->data[q * dim];
    for (int r = 0; r < k; ++r) {
      const int64_t expected = truth->data[q * k + r];
      const int64_t actual = (*hits)[q][r].id;
      if (actual == expected) {
        ++exact_ids;
        continue;
      }
      // A different id is acceptable only at exactly the same distance (a tie).
      EXPECT_FLOAT_EQ(SquaredL2(query, &base->data[actual * dim], dim),
                      SquaredL2(query, &base->data[expected * dim], dim))
          << "query " << q << " rank " << r;
    }
  }
  EXPECT_GT(exact_ids, 100 * k * 95 / 100);
}

}  // namespace
}  // namespace probity::index
