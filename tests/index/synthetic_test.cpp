#include "probity/index/synthetic.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_data.h"

namespace probity::index {
namespace {

const bool kSingleThreaded = testing::UseOneThread();

SyntheticOptions Small() {
  SyntheticOptions options;
  options.identities = 200;
  options.images_per_identity = 5;
  options.num_queries = 50;
  options.dim = 128;
  options.intrinsic_dim = 64;
  options.ground_truth_k = 10;
  options.seed = 42;
  return options;
}

float Dot(const float* a, const float* b, int dim) {
  float dot = 0;
  for (int i = 0; i < dim; ++i) dot += a[i] * b[i];
  return dot;
}

TEST(SyntheticTest, DeterministicForASeed) {
  auto first = GenerateSyntheticGallery(Small());
  auto second = GenerateSyntheticGallery(Small());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->gallery, second->gallery);
  EXPECT_EQ(first->queries, second->queries);
  EXPECT_EQ(first->ground_truth, second->ground_truth);
  SyntheticOptions other = Small();
  other.seed = 43;
  auto third = GenerateSyntheticGallery(other);
  ASSERT_TRUE(third.ok());
  EXPECT_NE(first->gallery, third->gallery);
}

TEST(SyntheticTest, BehavesLikeFaceEmbeddings) {
  const SyntheticOptions options = Small();
  auto data = GenerateSyntheticGallery(options);
  ASSERT_TRUE(data.ok());
  const int dim = options.dim;
  ASSERT_EQ(data->gallery.size(), static_cast<size_t>(1000 * dim));
  ASSERT_EQ(data->queries.size(), static_cast<size_t>(50 * dim));
  for (int64_t i = 0; i < 1000; ++i) {
    const float* row = data->gallery.data() + i * dim;
    EXPECT_NEAR(Dot(row, row, dim), 1.0f, 1e-4);
    EXPECT_EQ(data->gallery_labels[i], i / options.images_per_identity);
  }
  double same = 0, different = 0;
  int same_count = 0, different_count = 0;
  float same_min = 1, same_max = -1;
  for (int64_t i = 0; i < 1000; i += 7) {
    for (int64_t j = i + 1; j < 1000; j += 3) {
      const float cosine = Dot(&data->gallery[i * dim], &data->gallery[j * dim], dim);
      if (data->gallery_labels[i] == data->gallery_labels[j]) {
        same += cosine;
        ++same_count;
        same_min = std::min(same_min, cosine);
        same_max = std::max(same_max, cosine);
      } else {
        different += cosine;
        ++different_count;
      }
    }
  }
  ASSERT_GT(same_count, 20);
  EXPECT_GT(same / same_count, 0.4);
  EXPECT_LT(same / same_count, 0.7);
  EXPECT_GT(same_min, 0.2);
  EXPECT_LT(same_max, 0.9);
  EXPECT_LT(std::fabs(different / different_count), 0.03);
}

TEST(SyntheticTest, QueriesAreHeldOutImagesOfGalleryIdentities) {
  auto data = GenerateSyntheticGallery(Small());
  ASSERT_TRUE(data.ok());
  const int dim = data->dim;
  for (int64_t q = 0; q < 50; ++q) {
    EXPECT_EQ(data->query_labels[q], q * 200 / 50);
    // Held out: not a copy of any gallery image.
    const int64_t best = data->ground_truth[q * data->ground_truth_k];
    EXPECT_LT(Dot(&data->queries[q * dim], &data->gallery[best * dim], dim), 0.99f);
  }
}

TEST(SyntheticTest, GroundTruthIsTheExactTopK) {
  auto data = GenerateSyntheticGallery(Small());
  ASSERT_TRUE(data.ok());
  const int dim = data->dim;
  const int k = data->ground_truth_k;
  for (int64_t q = 0; q < 50; q += 5) {
    std::vector<std::pair<float, int64_t>> scored;
    for (int64_t i = 0; i < 1000; ++i) {
      scored.emplace_back(-Dot(&data->queries[q * dim], &data->gallery[i * dim], dim), i);
    }
    std::sort(scored.begin(), scored.end());
    for (int r = 0; r < k; ++r) {
      const int64_t id = data->ground_truth[q * k + r];
      const float score = Dot(&data->queries[q * dim], &data->gallery[id * dim], dim);
      EXPECT_NEAR(score, -scored[r].first, 1e-5) << "query " << q << " rank " << r;
    }
  }
}

TEST(SyntheticTest, ExactTopKL2IsNearestFirstAndPadsBeyondTheBase) {
  // Rows on a line: row i is (i, 0, ..., 0); the query at 2.2 is nearest to 2, then 3, 1, 4.
  const int dim = 4;
  std::vector<float> base(5 * dim, 0);
  for (int i = 0; i < 5; ++i) base[i * dim] = static_cast<float>(i);
  std::vector<float> query(dim, 0);
  query[0] = 2.2f;
  std::vector<float> scores;
  auto ids = ExactTopK(Metric::kL2, dim, base, query, 7, &scores);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int64_t>{2, 3, 1, 4, 0, -1, -1}));
  EXPECT_NEAR(scores[0], 0.04f, 1e-5);
  EXPECT_NEAR(scores[1], 0.64f, 1e-5);
  EXPECT_FALSE(ExactTopK(Metric::kL2, dim, std::span<const float>(base).first(7), query, 1).ok());
}

TEST(SyntheticTest, RejectsNonsense) {
  SyntheticOptions options = Small();
  options.intrinsic_dim = options.dim + 1;
  EXPECT_FALSE(GenerateSyntheticGallery(options).ok());
  options = Small();
  options.identities = 0;
  EXPECT_FALSE(GenerateSyntheticGallery(options).ok());
}

// Large galleries are generated chunk by chunk; the chunks must be the very rows of the whole
// gallery, so that a benchmark streaming them searches the gallery the ground truth describes.
TEST(SyntheticTest, ChunksConcatenateToTheWholeGallery) {
  SyntheticOptions options = Small();
  options.num_queries = 70;  // not a divisor of the identity count: uneven query spread
  auto whole = GenerateSyntheticGallery(options);
  ASSERT_TRUE(whole.ok()) << whole.status();
  SyntheticGallery joined;
  int64_t next_gallery_id = 0;
  int64_t next_query = 0;
  const std::vector<int64_t> bounds = {0, 1, 64, 130, options.identities};
  for (size_t c = 0; c + 1 < bounds.size(); ++c) {
    auto chunk = GenerateSyntheticIdentities(options, bounds[c], bounds[c + 1] - bounds[c]);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    EXPECT_EQ(chunk->first_gallery_id, next_gallery_id);
    EXPECT_EQ(chunk->first_query, next_query);
    next_gallery_id += static_cast<int64_t>(chunk->gallery_labels.size());
    next_query += static_cast<int64_t>(chunk->query_labels.size());
    joined.gallery.insert(joined.gallery.end(), chunk->gallery.begin(), chunk->gallery.end());
    joined.gallery_labels.insert(joined.gallery_labels.end(), chunk->gallery_labels.begin(),
                                 chunk->gallery_labels.end());
    joined.queries.insert(joined.queries.end(), chunk->queries.begin(), chunk->queries.end());
    joined.query_labels.insert(joined.query_labels.end(), chunk->query_labels.begin(),
                               chunk->query_labels.end());
  }
  EXPECT_EQ(joined.gallery, whole->gallery);
  EXPECT_EQ(joined.gallery_labels, whole->gallery_labels);
  EXPECT_EQ(joined.queries, whole->queries);
  EXPECT_EQ(joined.query_labels, whole->query_labels);
}

TEST(SyntheticTest, RejectsAChunkOutsideTheGallery) {
  const SyntheticOptions options = Small();
  EXPECT_FALSE(GenerateSyntheticIdentities(options, -1, 5).ok());
  EXPECT_FALSE(GenerateSyntheticIdentities(options, options.identities - 4, 5).ok());
  EXPECT_TRUE(GenerateSyntheticIdentities(options, options.identities - 5, 5).ok());
}

}  // namespace
}  // namespace probity::index
