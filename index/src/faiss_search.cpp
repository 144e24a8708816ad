#include "faiss_search.h"

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFastScan.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/BlockInvertedLists.h>

#include <algorithm>
#include <limits>

namespace probity::index::internal {
namespace {

faiss::MetricType ToFaiss(Metric metric) {
  return metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

}  // namespace

// Polysemous training only reorders PQ centroids for Hamming pre-filtering, which Probity never
// enables (polysemous_ht = 0); it changes no search result and dominates training time.
void SkipPolysemousTraining(faiss::Index* index) {
  while (index != nullptr) {
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(index))
      ivfpq->do_polysemous_training = false;
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(index)) pq->do_polysemous_training = false;
    if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) {
      index = pre->index;
    } else if (auto* id_map = dynamic_cast<faiss::IndexIDMap*>(index)) {
      index = id_map->index;
    } else {
      index = nullptr;
    }
  }
}

std::unique_ptr<faiss::Index> CreateIndex(const CollectionSpec& spec) {
  std::unique_ptr<faiss::Index> index(
      faiss::index_factory(spec.dim, spec.factory.c_str(), ToFaiss(spec.metric)));
  SkipPolysemousTraining(index.get());
  if (const faiss::IndexIVF* ivf = FindIvf(*index)) {
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(ivf->quantizer)) {
      hnsw->hnsw.efSearch = kHnswMinEfSearch;
    }
  }
  const bool has_ids =
      FindIvf(*index) != nullptr || dynamic_cast<const faiss::IndexIDMap*>(index.get()) != nullptr;
  if (has_ids) return index;
  auto wrapped = std::make_unique<faiss::IndexIDMap2>(index.release());
  wrapped->own_fields = true;
  return wrapped;
}

namespace {

std::unique_ptr<faiss::Index> SerializedCopy(const faiss::Index& index) {
  faiss::VectorIOWriter writer;
  faiss::write_index(&index, &writer);
  faiss::VectorIOReader reader;
  reader.data = std::move(writer.data);
  return std::unique_ptr<faiss::Index>(faiss::read_index(&reader));
}

}  // namespace

std::unique_ptr<faiss::Index> CopyIndex(const faiss::Index& index) {
  // FAISS 1.7.3's clone_index copies an IndexHNSWFlat as a plain IndexHNSW, which write_index
  // then refuses ("h != 0"): IVF indexes with an HNSW coarse quantizer are copied through
  // their serialization, which keeps every type.
  const faiss::IndexIVF* ivf = FindIvf(index);
  if (ivf != nullptr && dynamic_cast<const faiss::IndexHNSW*>(ivf->quantizer) != nullptr) {
    return SerializedCopy(index);
  }
  try {
    return std::unique_ptr<faiss::Index>(faiss::clone_index(&index));
  } catch (const faiss::FaissException&) {
    return SerializedCopy(index);
  }
}

void SetVerbose(faiss::Index& index, bool verbose) {
  faiss::Index* current = &index;
  while (current != nullptr) {
    current->verbose = verbose;
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(current)) {
      ivf->cp.verbose = verbose;
      return;
    }
    if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(current)) {
      for (faiss::VectorTransform* transform : pre->chain) {
        if (auto* linear = dynamic_cast<faiss::LinearTransform*>(transform)) {
          linear->verbose = verbose;
        }
        if (auto* opq = dynamic_cast<faiss::OPQMatrix*>(transform)) opq->verbose = verbose;
      }
      current = pre->index;
    } else if (auto* id_map = dynamic_cast<faiss::IndexIDMap*>(current)) {
      current = id_map->index;
    } else {
      return;
    }
  }
}

const faiss::IndexIVF* FindIvf(const faiss::Index& index) {
  const faiss::Index* current = &index;
  while (current != nullptr) {
    if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(current)) return ivf;
    if (auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(current)) {
      current = pre->index;
    } else if (auto* id_map = dynamic_cast<const faiss::IndexIDMap*>(current)) {
      current = id_map->index;
    } else {
      return nullptr;
    }
  }
  return nullptr;
}

bool AcceptsSearchParams(const faiss::Index& index) {
  const faiss::IndexIVF* ivf = FindIvf(index);
  if (ivf == nullptr || dynamic_cast<const faiss::IndexIVFFastScan*>(ivf) != nullptr) {
    return false;
  }
  // Only the shapes whose search() forwards parameters in 1.7.3: IVF alone or under one
  // pre-transform.
  if (&index == ivf) return true;
  auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(&index);
  return pre != nullptr && pre->index == ivf;
}

bool SupportsRemove(const faiss::Index& index) {
  const faiss::IndexIVF* ivf = FindIvf(index);
  if (ivf == nullptr) return true;
  return dynamic_cast<const faiss::BlockInvertedLists*>(ivf->invlists) == nullptr;
}

int HnswEfSearch(int nprobe) {
  // In 64 bits: 2 x nprobe must not overflow for a caller's huge nprobe.
  return static_cast<int>(
      std::clamp<int64_t>(2 * int64_t{nprobe}, kHnswMinEfSearch, std::numeric_limits<int>::max()));
}

IvfSearchParams::IvfSearchParams(const faiss::IndexIVF& index, int nprobe) {
  ivf.nprobe = static_cast<size_t>(nprobe);
  if (dynamic_cast<const faiss::IndexHNSW*>(index.quantizer) != nullptr) {
    hnsw.efSearch = HnswEfSearch(nprobe);
    ivf.quantizer_params = &hnsw;
  }
}

void SearchWithNprobe(const faiss::Index& index, int64_t num_queries, const float* queries, int k,
                      int nprobe, float* distances, int64_t* labels, std::mutex& nprobe_lock) {
  const faiss::IndexIVF* ivf = FindIvf(index);
  if (ivf == nullptr) {
    index.search(num_queries, queries, k, distances, labels);
    return;
  }
  if (AcceptsSearchParams(index)) {
    IvfSearchParams ivf_params(*ivf, nprobe);
    if (&index == ivf) {
      index.search(num_queries, queries, k, distances, labels, &ivf_params.ivf);
    } else {
      faiss::SearchParametersPreTransform pre_params;
      pre_params.index_params = &ivf_params.ivf;
      index.search(num_queries, queries, k, distances, labels, &pre_params);
    }
    return;
  }
  std::lock_guard<std::mutex> lock(nprobe_lock);
  const_cast<faiss::IndexIVF*>(ivf)->nprobe = nprobe;
  index.search(num_queries, queries, k, distances, labels);
}

}  // namespace probity::index::internal
