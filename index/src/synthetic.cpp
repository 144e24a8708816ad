#include "probity/index/synthetic.h"

#include <faiss/utils/distances.h>

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace probity::index {
namespace {

// Same-identity cosine is about quality_a * quality_b, so qualities in [0.63, 0.84] give
// cosines in roughly [0.4, 0.7].
constexpr float kMinQuality = 0.63f;
constexpr float kMaxQuality = 0.84f;
// A little isotropic noise keeps the vectors full rank like real embeddings.
constexpr float kAmbientNoise = 0.1f;

uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + stream + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void Normalize(std::span<float> v) {
  double norm2 = 0;
  for (float x : v) norm2 += static_cast<double>(x) * x;
  const float scale = static_cast<float>(1.0 / std::sqrt(std::max(norm2, 1e-30)));
  for (float& x : v) x *= scale;
}

std::vector<float> RandomUnit(std::mt19937_64& rng, int n) {
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  Normalize(v);
  return v;
}

// dim x intrinsic matrix with orthonormal columns, so unit vectors of the subspace stay unit.
std::vector<float> OrthonormalBasis(uint64_t seed, int dim, int intrinsic) {
  std::mt19937_64 rng(StreamSeed(seed, ~0ULL));
  std::vector<std::vector<float>> columns;
  for (int c = 0; c < intrinsic; ++c) {
    std::vector<float> v = RandomUnit(rng, dim);
    for (const auto& previous : columns) {
      double dot = 0;
      for (int i = 0; i < dim; ++i) dot += v[i] * previous[i];
      for (int i = 0; i < dim; ++i) v[i] -= static_cast<float>(dot) * previous[i];
    }
    Normalize(v);
    columns.push_back(std::move(v));
  }
  std::vector<float> basis(static_cast<size_t>(dim) * intrinsic);
  for (int c = 0; c < intrinsic; ++c) {
    for (int i = 0; i < dim; ++i) basis[static_cast<size_t>(i) * intrinsic + c] = columns[c][i];
  }
  return basis;
}

// One image of an identity whose subspace direction is `center`.
void MakeImage(std::mt19937_64& rng, std::span<const float> center, std::span<const float> basis,
               int dim, std::span<float> out) {
  const int intrinsic = static_cast<int>(center.size());
  std::uniform_real_distribution<float> uniform(kMinQuality, kMaxQuality);
  const float quality = uniform(rng);
  std::vector<float> variation = RandomUnit(rng, intrinsic);
  std::vector<float> latent(intrinsic);
  const float spread = std::sqrt(1 - quality * quality);
  for (int c = 0; c < intrinsic; ++c) latent[c] = quality * center[c] + spread * variation[c];
  std::vector<float> ambient = RandomUnit(rng, dim);
  const float keep = std::sqrt(1 - kAmbientNoise * kAmbientNoise);
  for (int i = 0; i < dim; ++i) {
    const float* row = basis.data() + static_cast<size_t>(i) * intrinsic;
    float projected = 0;
    for (int c = 0; c < intrinsic; ++c) projected += row[c] * latent[c];
    out[i] = keep * projected + kAmbientNoise * ambient[i];
  }
  Normalize(out);
}

absl::Status CheckOptions(const SyntheticOptions& options) {
  if (options.identities <= 0 || options.images_per_identity <= 0 || options.num_queries < 0 ||
      options.dim <= 0 || options.intrinsic_dim <= 0 || options.intrinsic_dim > options.dim ||
      options.ground_truth_k <= 0) {
    return absl::InvalidArgumentError(
        "synthetic gallery: identities, images per identity, dim, ground-truth k must be "
        "positive and the intrinsic dimension at most dim");
  }
  return absl::OkStatus();
}

// Query q is a held-out image of identity q * identities / num_queries, so the queries of
// identities below `identity` are those with q * identities < identity * num_queries.
int64_t FirstQueryOf(const SyntheticOptions& options, int64_t identity) {
  return (identity * options.num_queries + options.identities - 1) / options.identities;
}

// Fills the gallery and query rows of identities [first, first + count) into `out`, whose
// vectors are sized for exactly those rows. Every identity draws from its own random stream
// and makes its queries right after its gallery images, so any split gives the same rows.
void FillIdentities(const SyntheticOptions& options, int64_t first, int64_t count,
                    SyntheticChunk& out) {
  const int dim = options.dim;
  const int64_t per_identity = options.images_per_identity;
  const std::vector<float> basis = OrthonormalBasis(options.seed, dim, options.intrinsic_dim);
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t identity = first; identity < first + count; ++identity) {
    std::mt19937_64 rng(StreamSeed(options.seed, identity));
    const std::vector<float> center = RandomUnit(rng, options.intrinsic_dim);
    for (int64_t j = 0; j < per_identity; ++j) {
      const int64_t row = (identity - first) * per_identity + j;
      out.gallery_labels[row] = identity;
      MakeImage(rng, center, basis, dim, std::span<float>(out.gallery.data() + row * dim, dim));
    }
    const int64_t query_end = FirstQueryOf(options, identity + 1) - out.first_query;
    for (int64_t q = FirstQueryOf(options, identity) - out.first_query; q < query_end; ++q) {
      out.query_labels[q] = identity;
      MakeImage(rng, center, basis, dim, std::span<float>(out.queries.data() + q * dim, dim));
    }
  }
}

}  // namespace

absl::StatusOr<SyntheticChunk> GenerateSyntheticIdentities(const SyntheticOptions& options,
                                                           int64_t first_identity, int64_t count) {
  if (absl::Status valid = CheckOptions(options); !valid.ok()) return valid;
  if (first_identity < 0 || count < 0 || first_identity > options.identities - count) {
    return absl::InvalidArgumentError("synthetic gallery: identity range outside the gallery");
  }
  SyntheticChunk out;
  out.first_gallery_id = first_identity * options.images_per_identity;
  out.first_query = FirstQueryOf(options, first_identity);
  const int64_t rows = count * options.images_per_identity;
  const int64_t queries = FirstQueryOf(options, first_identity + count) - out.first_query;
  out.gallery.resize(rows * options.dim);
  out.gallery_labels.resize(rows);
  out.queries.resize(queries * options.dim);
  out.query_labels.resize(queries);
  FillIdentities(options, first_identity, count, out);
  return out;
}

absl::StatusOr<SyntheticGallery> GenerateSyntheticGallery(const SyntheticOptions& options) {
  absl::StatusOr<SyntheticChunk> all = GenerateSyntheticIdentities(options, 0, options.identities);
  if (!all.ok()) return all.status();
  SyntheticGallery out;
  out.dim = options.dim;
  out.gallery = std::move(all->gallery);
  out.gallery_labels = std::move(all->gallery_labels);
  out.queries = std::move(all->queries);
  out.query_labels = std::move(all->query_labels);
  const int64_t gallery_size = static_cast<int64_t>(out.gallery_labels.size());
  out.ground_truth_k = static_cast<int>(std::min<int64_t>(options.ground_truth_k, gallery_size));
  absl::StatusOr<std::vector<int64_t>> truth =
      ExactTopK(Metric::kInnerProduct, options.dim, out.gallery, out.queries, out.ground_truth_k);
  if (!truth.ok()) return truth.status();
  out.ground_truth = *std::move(truth);
  return out;
}

absl::StatusOr<std::vector<int64_t>> ExactTopK(Metric metric, int dim, std::span<const float> base,
                                               std::span<const float> queries, int k,
                                               std::vector<float>* scores) {
  if (dim <= 0 || k <= 0 || base.size() % dim != 0 || queries.size() % dim != 0) {
    return absl::InvalidArgumentError("exact search: bad dimension, k or matrix size");
  }
  const int64_t num_queries = static_cast<int64_t>(queries.size() / dim);
  std::vector<int64_t> ids(num_queries * k);
  std::vector<float> distances(num_queries * k);
  // FAISS's brute-force k-NN straight on the caller's rows: an IndexFlat would first copy the
  // whole base (10 GB at 20 M x 128-d), doubling the peak memory of `probity gen`.
  const size_t rows = base.size() / dim;
  try {
    if (metric == Metric::kL2) {
      faiss::knn_L2sqr(queries.data(), base.data(), dim, num_queries, rows, k, distances.data(),
                       ids.data());
    } else {
      faiss::knn_inner_product(queries.data(), base.data(), dim, num_queries, rows, k,
                               distances.data(), ids.data());
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("exact search: FAISS error: ", e.what()));
  }
  if (scores != nullptr) *scores = std::move(distances);
  return ids;
}

}  // namespace probity::index
