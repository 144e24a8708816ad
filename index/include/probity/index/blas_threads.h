#pragma once

// OpenBLAS's own thread pool in a process that serves searches.
//
// FAISS calls BLAS (sgemm) inside a search when a call holds enough queries (the coarse
// quantizer's distances from 20 queries on, as dynamic batching makes them) and for some product
// quantizer tables. Debian's default libblas.so.3 is OpenBLAS built with pthreads: its own pool
// of one thread per core, separate from FAISS's OpenMP threads, whose idle workers busy-wait
// (sched_yield) after every call. A server already runs many searches at once on its gRPC
// threads and FAISS's OpenMP threads, so that pool only competes with them for the cores: on the
// development VM a quarter of a batching service's CPU samples were its workers spinning.
//
// OpenBLAS's OpenMP build (the GPU bundle's) has no pool of its own and is left alone, as is any
// other BLAS.

#include <string>

namespace probity::index {

// What UseOneBlasThreadForServing found and did, for the log.
struct BlasThreading {
  bool changed = false;  // OpenBLAS with pthreads, now one thread per call
  std::string description;
};

// Limits OpenBLAS's pthreads pool to the calling thread, when that is the BLAS in use.
BlasThreading UseOneBlasThreadForServing();

}  // namespace probity::index
