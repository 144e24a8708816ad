#include "coarse_assignment.h"

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <memory>

#include "faiss_search.h"
#include "probity/common/hex.h"
#include "probity/common/sha256.h"

namespace probity::index::internal {
namespace {

// A FAISS writer that hashes what it is given instead of storing it, so that fingerprinting a
// billion-scale quantizer (a million centroids and their HNSW graph) needs no second copy.
class Sha256Writer : public faiss::IOWriter {
 public:
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    hasher_.Update(ptr, size * nitems);
    return nitems;
  }
  std::string HexDigest() {
    absl::StatusOr<common::Sha256Digest> digest = hasher_.Finish();
    FAISS_THROW_IF_NOT_MSG(digest.ok(), "OpenSSL SHA-256 failed");
    return common::LowercaseHex(*digest);
  }

 private:
  common::Sha256Hasher hasher_;
};

const faiss::IndexPreTransform* PreTransformOf(const faiss::Index& shard) {
  return dynamic_cast<const faiss::IndexPreTransform*>(&shard);
}

}  // namespace

std::optional<std::string> CoarseFingerprint(const faiss::Index& shard) {
  // AcceptsSearchParams admits exactly the shapes handled here (IVF alone or under one
  // pre-transform) and rejects fast-scan lists.
  if (!AcceptsSearchParams(shard)) return std::nullopt;
  const faiss::IndexIVF* ivf = FindIvf(shard);
  if (ivf == nullptr || ivf->quantizer == nullptr) return std::nullopt;
  Sha256Writer writer;
  const int64_t header[] = {static_cast<int64_t>(ivf->metric_type), ivf->d,
                            static_cast<int64_t>(ivf->nlist)};
  writer(header, sizeof(header), 1);
  if (const faiss::IndexPreTransform* pre = PreTransformOf(shard)) {
    const int64_t transforms = static_cast<int64_t>(pre->chain.size());
    writer(&transforms, sizeof(transforms), 1);
    for (const faiss::VectorTransform* transform : pre->chain) {
      faiss::write_VectorTransform(transform, &writer);
    }
  }
  faiss::write_index(ivf->quantizer, &writer);
  return writer.HexDigest();
}

CoarseAssignment AssignCoarse(const faiss::Index& shard, int64_t num_queries, const float* queries,
                              int nprobe) {
  const faiss::IndexIVF* ivf = FindIvf(shard);
  FAISS_THROW_IF_NOT_MSG(ivf != nullptr, "coarse assignment needs an IVF index");
  CoarseAssignment assignment;
  assignment.num_queries = num_queries;
  assignment.nprobe = static_cast<int>(std::min<size_t>(ivf->nlist, static_cast<size_t>(nprobe)));
  assignment.queries = queries;
  if (const faiss::IndexPreTransform* pre = PreTransformOf(shard)) {
    // The whole batch at once, as IndexPreTransform::search does.
    const float* transformed = pre->apply_chain(num_queries, queries);
    if (transformed != queries) {
      std::unique_ptr<const float[]> owned(transformed);
      assignment.transformed.assign(transformed, transformed + num_queries * ivf->d);
      assignment.queries = assignment.transformed.data();
    }
  }
  const int64_t width = assignment.nprobe;
  assignment.lists.resize(num_queries * width);
  assignment.distances.resize(num_queries * width);
  // The requested nprobe, as SearchWithNprobe passes it: it also sets an HNSW quantizer's
  // efSearch, which must not change where nprobe exceeds nlist.
  const IvfSearchParams params(*ivf, nprobe);
  // IndexIVF::search's split: one slice per thread, searched in parallel unless this runs
  // inside a parallel region already.
  const int slices = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), num_queries));
  std::vector<std::string> errors(std::max(slices, 0));
#pragma omp parallel for if (slices > 1)
  for (int slice = 0; slice < slices; ++slice) {
    const int64_t first = num_queries * slice / slices;
    const int64_t end = num_queries * (slice + 1) / slices;
    if (end <= first) continue;
    try {
      ivf->quantizer->search(end - first, assignment.queries + first * ivf->d, width,
                             assignment.distances.data() + first * width,
                             assignment.lists.data() + first * width, params.ivf.quantizer_params);
    } catch (const std::exception& e) {
      errors[slice] = e.what();
    }
  }
  for (const std::string& error : errors) {
    if (!error.empty()) throw faiss::FaissException(error);
  }
  return assignment;
}

void SearchPreassigned(const faiss::Index& shard, const CoarseAssignment& assignment, int k,
                       float* distances, int64_t* labels) {
  const faiss::IndexIVF* ivf = FindIvf(shard);
  FAISS_THROW_IF_NOT_MSG(ivf != nullptr, "coarse assignment needs an IVF index");
  if (assignment.num_queries == 0) return;
  const IvfSearchParams params(*ivf, assignment.nprobe);
  ivf->search_preassigned(assignment.num_queries, assignment.queries, k, assignment.lists.data(),
                          assignment.distances.data(), distances, labels, /*store_pairs=*/false,
                          &params.ivf);
}

}  // namespace probity::index::internal
