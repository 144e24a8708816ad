#pragma once

// One coarse assignment for many shards. The shards of a collection come from one training, so
// they hold identical coarse quantizers (and pre-transforms): searching each shard with
// faiss::Index::search repeats the same coarse search S times. Here the coarse search runs once
// per batch and every shard scans its own inverted lists with IndexIVF::search_preassigned.
// Functions here may throw faiss::FaissException; callers turn that into a Status.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}

namespace probity::index::internal {

// SHA-256 (hex) of everything that decides which lists a query probes and the coarse scores
// passed to the list scan: the IVF's metric and list count, the pre-transform chain and the
// coarse quantizer (centroids and, for HNSW, the graph), each serialized as FAISS writes it.
// Two shards with the same fingerprint assign every query identically. nullopt for shards
// that cannot share an assignment: no IVF, fast-scan lists (no search_preassigned in FAISS
// 1.7.3), or a shape whose search does not take per-call parameters (AcceptsSearchParams).
std::optional<std::string> CoarseFingerprint(const faiss::Index& shard);

// The coarse search of one batch: the queries as the IVF sees them (after any pre-transform)
// and, per query, its nprobe lists and coarse scores.
struct CoarseAssignment {
  int64_t num_queries = 0;
  int nprobe = 0;                  // min(requested nprobe, nlist), as IndexIVF::search uses
  std::vector<float> transformed;  // empty when the shard has no pre-transform
  const float* queries = nullptr;  // the IVF's input: `transformed` or the caller's queries
  std::vector<int64_t> lists;      // num_queries x nprobe
  std::vector<float> distances;    // num_queries x nprobe
};

// Runs the coarse search of `shard` (a shard with a CoarseFingerprint) exactly as
// IndexIVF::search does, down to its split of the batch into one slice per OpenMP thread: a
// flat quantizer's scores depend on whether FAISS computes them with BLAS, which it decides
// per call, so the same slices give bit-identical scores. `queries` must outlive the result.
CoarseAssignment AssignCoarse(const faiss::Index& shard, int64_t num_queries, const float* queries,
                              int nprobe);

// Scans the shard's inverted lists for an assignment made by AssignCoarse on a shard with the
// same CoarseFingerprint: the same results as shard.search with that nprobe.
void SearchPreassigned(const faiss::Index& shard, const CoarseAssignment& assignment, int k,
                       float* distances, int64_t* labels);

}  // namespace probity::index::internal
