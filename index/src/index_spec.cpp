#include "probity/index/index_spec.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>

#include <cmath>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "faiss_search.h"

namespace probity::index {
namespace {

// FAISS's messages start with the function and source position ("Error in ... at
// faiss/index_factory.cpp:123: could not parse ..."); users need only what follows.
std::string FaissReason(const std::string& what) {
  const size_t at = what.find(".cpp:");
  if (at == std::string::npos) return what;
  const size_t colon = what.find(": ", at);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

// The first PQ in the spec ("PQ64", "PQ16x4fs", the "PQ16" of "OPQ16_64") whose sub-quantizer
// count does not divide `dim`, or 0.
int PqNotDividing(const std::string& factory, int dim) {
  static const std::regex kPq("PQ([0-9]+)");
  for (std::sregex_iterator it(factory.begin(), factory.end(), kPq), end; it != end; ++it) {
    const int m = std::stoi((*it)[1].str());
    if (m > 0 && dim % m != 0) return m;
  }
  return 0;
}

}  // namespace

absl::StatusOr<SpecShape> InspectSpec(const CollectionSpec& spec) {
  if (spec.dim <= 0) return absl::InvalidArgumentError("dimension must be positive");
  std::unique_ptr<faiss::Index> index;
  try {
    index = internal::CreateIndex(spec);
  } catch (const std::exception& e) {
    if (const int m = PqNotDividing(spec.factory, spec.dim); m != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec '", spec.factory, "': the dimension ", spec.dim, " is not divisible by the PQ's ",
          m, " sub-quantizers (choose m dividing ", spec.dim, ")"));
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown or unsupported FAISS factory spec '",
                                                   spec.factory, "' for dimension ", spec.dim, ": ",
                                                   FaissReason(e.what())));
  }
  SpecShape shape;
  shape.dim = spec.dim;
  shape.ivf_dim = spec.dim;
  shape.has_pre_transform = dynamic_cast<const faiss::IndexPreTransform*>(index.get()) != nullptr;
  const faiss::IndexIVF* ivf = internal::FindIvf(*index);
  if (ivf == nullptr) {
    shape.code_size = int64_t{4} * spec.dim;  // Flat: float32 vectors
    return shape;
  }
  shape.ivf_dim = ivf->d;
  shape.nlist = static_cast<int64_t>(ivf->nlist);
  shape.code_size = static_cast<int64_t>(ivf->code_size);
  if (dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer) != nullptr) {
    shape.coarse = CoarseQuantizerKind::kFlat;
  } else if (auto* hnsw = dynamic_cast<const faiss::IndexHNSWFlat*>(ivf->quantizer)) {
    shape.coarse = CoarseQuantizerKind::kHnsw;
    shape.hnsw_m = hnsw->hnsw.nb_neighbors(1);
  } else {
    shape.coarse = CoarseQuantizerKind::kOther;
  }
  if (auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf)) {
    shape.pq_m = static_cast<int>(ivfpq->pq.M);
    shape.pq_nbits = static_cast<int>(ivfpq->pq.nbits);
    // initialize_IVFPQ_precomputed_table's rule in FAISS 1.7.3.
    const int64_t table = shape.nlist * shape.pq_m * (int64_t{1} << shape.pq_nbits) * 4;
    shape.precomputed_table = ivfpq->by_residual && ivf->metric_type == faiss::METRIC_L2 &&
                              ivfpq->use_precomputed_table == 0 &&
                              table <= static_cast<int64_t>(faiss::precomputed_table_max_bytes);
  }
  return shape;
}

absl::Status CheckTrainingSize(const CollectionSpec& spec, const SpecShape& shape,
                               int64_t training_rows) {
  const int64_t needed = kMinTrainingPointsPerList * shape.nlist;
  if (training_rows >= needed) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "spec '", spec.factory, "' has ", shape.nlist, " lists: its k-means needs at least ",
      kMinTrainingPointsPerList, " x ", shape.nlist, " = ", needed, " training vectors, got ",
      training_rows, " (use more training vectors or fewer lists)"));
}

double HnswBytesPerNode(int m) {
  const double neighbours = 2.0 * m + static_cast<double>(m) / (m - 1);
  return 4.0 * neighbours + 4.0 + 8.0;
}

CpuMemoryEstimate EstimateCpuMemory(const SpecShape& shape, int64_t num_vectors, int num_shards) {
  CpuMemoryEstimate estimate;
  estimate.num_shards = num_shards;
  estimate.codes = num_vectors * shape.code_size;
  estimate.ids = num_vectors * 8;
  if (shape.nlist == 0) return estimate;
  const int64_t centroids = shape.nlist * shape.ivf_dim * 4;
  estimate.coarse_quantizer = centroids;
  if (shape.coarse == CoarseQuantizerKind::kHnsw) {
    estimate.coarse_quantizer +=
        static_cast<int64_t>(std::llround(shape.nlist * HnswBytesPerNode(shape.hnsw_m)));
  }
  estimate.inverted_lists = shape.nlist * 2 * static_cast<int64_t>(sizeof(std::vector<uint8_t>));
  if (shape.pq_m > 0) {
    const int64_t ksub = int64_t{1} << shape.pq_nbits;
    estimate.pq_codebooks = ksub * shape.ivf_dim * 4;
    if (shape.precomputed_table) estimate.precomputed_table = shape.nlist * shape.pq_m * ksub * 4;
  }
  return estimate;
}

}  // namespace probity::index
