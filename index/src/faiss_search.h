#pragma once

// The few places where Probity has to know how FAISS 1.7.3 index types differ: which ones
// accept per-call search parameters, which ones can remove ids, and how to copy a trained
// index. Functions here may throw faiss::FaissException; callers turn that into a Status.

#include <cstdint>
#include <memory>
#include <mutex>

#include "probity/index/types.h"

namespace faiss {
struct Index;
struct IndexIVF;
}  // namespace faiss

namespace probity::index::internal {

// Builds an untrained index from the factory spec. Indexes without inverted lists (e.g. "Flat")
// are wrapped in IndexIDMap2 so that they accept the caller's 64-bit ids like IVF indexes do.
std::unique_ptr<faiss::Index> CreateIndex(const CollectionSpec& spec);

// An independent copy: faiss::clone_index where FAISS 1.7.3 supports the type, otherwise a
// serialize/deserialize round trip (fast-scan IVF indexes have no clone support in 1.7.3).
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

// Runs index.search with the given nprobe without racing other searches that use a different
// nprobe: per-call parameters where the type accepts them, otherwise under `nprobe_lock`.
void SearchWithNprobe(const faiss::Index& index, int64_t num_queries, const float* queries, int k,
                      int nprobe, float* distances, int64_t* labels, std::mutex& nprobe_lock);

}  // namespace probity::index::internal
