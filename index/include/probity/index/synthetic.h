#pragma once

// Synthetic face-like embeddings: identities are random directions in a low-dimensional
// subspace of R^d (real face embeddings have low intrinsic dimension), each image mixes its
// identity's direction with per-image variation so that two images of one identity have
// cosine around 0.4-0.7 and images of different identities are near 0. Deterministic for a
// seed: every identity draws from its own random stream, so the output does not depend on the
// number of threads.

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/index/types.h"

namespace probity::index {

struct SyntheticOptions {
  int64_t identities = 1000;
  int images_per_identity = 10;  // gallery images per identity
  int64_t num_queries = 1000;    // held-out images, spread evenly over the identities
  int dim = 512;
  int intrinsic_dim = 64;
  int ground_truth_k = 100;
  uint64_t seed = 1;
};

struct SyntheticGallery {
  int dim = 0;
  // Gallery vector i has id i and identity gallery_labels[i] (= i / images_per_identity).
  std::vector<float> gallery;
  std::vector<int64_t> gallery_labels;
  std::vector<float> queries;
  std::vector<int64_t> query_labels;
  int ground_truth_k = 0;
  std::vector<int64_t> ground_truth;  // num_queries x ground_truth_k gallery ids, best first
};

absl::StatusOr<SyntheticGallery> GenerateSyntheticGallery(const SyntheticOptions& options);

// The rows of identities [first_identity, first_identity + count) exactly as
// GenerateSyntheticGallery makes them for the same options, without ground truth: galleries too
// large for memory (20 M x 512 floats is 41 GB) are generated and added chunk by chunk.
struct SyntheticChunk {
  int64_t first_gallery_id = 0;  // gallery row r here is gallery id first_gallery_id + r
  int64_t first_query = 0;       // query row r here is query first_query + r
  std::vector<float> gallery;
  std::vector<int64_t> gallery_labels;
  std::vector<float> queries;
  std::vector<int64_t> query_labels;
};

absl::StatusOr<SyntheticChunk> GenerateSyntheticIdentities(const SyntheticOptions& options,
                                                           int64_t first_identity, int64_t count);

// Exact top-k by brute force (FAISS flat index): ids, num_queries x k, best first.
absl::StatusOr<std::vector<int64_t>> ExactTopK(Metric metric, int dim, std::span<const float> base,
                                               std::span<const float> queries, int k,
                                               std::vector<float>* scores = nullptr);

}  // namespace probity::index
