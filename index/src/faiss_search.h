#pragma once

// The few places where Probity has to know how FAISS 1.7.3 index types differ: which ones
// accept per-call search parameters, which ones can remove ids, and how to copy a trained
// index. Functions here may throw faiss::FaissException; callers turn that into a Status.

#include <faiss/IndexIVF.h>
#include <faiss/impl/HNSW.h>

#include <cstdint>
#include <memory>
#include <mutex>

#include "probity/index/types.h"

namespace faiss {
struct Index;
}  // namespace faiss

namespace probity::index::internal {

// Builds an untrained index from the factory spec. Indexes without inverted lists (e.g. "Flat")
// are wrapped in IndexIDMap2 so that they accept the caller's 64-bit ids like IVF indexes do.
std::unique_ptr<faiss::Index> CreateIndex(const CollectionSpec& spec);

// An independent copy: faiss::clone_index where FAISS 1.7.3 supports the type, otherwise a
// serialize/deserialize round trip (fast-scan IVF indexes have no clone support in 1.7.3, and
// its clone of an HNSW coarse quantizer loses the type that write_index needs).
std::unique_ptr<faiss::Index> CopyIndex(const faiss::Index& index);

// Turns FAISS's log on stdout on or off for the index and everything it wraps.
void SetVerbose(faiss::Index& index, bool verbose);

// The IVF core under pre-transforms and id maps, or nullptr for indexes without one.
const faiss::IndexIVF* FindIvf(const faiss::Index& index);

// True when nprobe can be passed per call (SearchParametersIVF); fast-scan IVF indexes in 1.7.3
// reject parameters, so their nprobe has to be set on the index under a lock.
bool AcceptsSearchParams(const faiss::Index& index);

// Fast-scan inverted lists (BlockInvertedLists) cannot remove entries in 1.7.3 and abort the
// process from inside an OpenMP region when asked to, so erasure must check this first.
bool SupportsRemove(const faiss::Index& index);

// HNSW coarse quantizers (`IVF262144_HNSW32,...`) find a query's nprobe nearest lists with a
// beam of efSearch candidates; a beam narrower than nprobe misses lists that a flat quantizer
// would probe. Each search uses max(2 x nprobe, kHnswMinEfSearch), and trained indexes store
// kHnswMinEfSearch as their default, which FAISS uses when adding vectors (one list each) and
// which `faiss.read_index` users get.
inline constexpr int kHnswMinEfSearch = 64;
int HnswEfSearch(int nprobe);

// The per-call parameters of an IVF search with `nprobe`: the IVF's nprobe, and for an HNSW
// coarse quantizer its efSearch (HnswEfSearch). Not copyable: `ivf` points into `hnsw`.
struct IvfSearchParams {
  IvfSearchParams(const faiss::IndexIVF& index, int nprobe);
  IvfSearchParams(const IvfSearchParams&) = delete;
  IvfSearchParams& operator=(const IvfSearchParams&) = delete;
  faiss::SearchParametersIVF ivf;
  faiss::SearchParametersHNSW hnsw;
};

// Runs index.search with the given nprobe without racing other searches that use a different
// nprobe: per-call parameters where the type accepts them, otherwise under `nprobe_lock`.
void SearchWithNprobe(const faiss::Index& index, int64_t num_queries, const float* queries, int k,
                      int nprobe, float* distances, int64_t* labels, std::mutex& nprobe_lock);

}  // namespace probity::index::internal
