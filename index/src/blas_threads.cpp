#include "probity/index/blas_threads.h"

#include "absl/strings/str_cat.h"

// OpenBLAS's own API, resolved at run time: absent (null) when another BLAS is linked.
extern "C" {
int openblas_get_parallel() __attribute__((weak));
int openblas_get_num_threads() __attribute__((weak));
void openblas_set_num_threads(int threads) __attribute__((weak));
}

namespace probity::index {

BlasThreading UseOneBlasThreadForServing() {
  if (openblas_get_parallel == nullptr || openblas_get_num_threads == nullptr ||
      openblas_set_num_threads == nullptr) {
    return {false, "BLAS is not OpenBLAS: its threads are left as they are"};
  }
  // 0: single-threaded build, 1: pthreads, 2: OpenMP (where setting the thread count would set
  // the calling thread's OpenMP team size instead).
  const int parallel = openblas_get_parallel();
  if (parallel != 1) {
    return {false, absl::StrCat("OpenBLAS without a pool of its own (",
                                parallel == 2 ? "OpenMP" : "single-threaded",
                                " build): its threads are left as they are")};
  }
  const int before = openblas_get_num_threads();
  openblas_set_num_threads(1);
  return {before != 1, absl::StrCat("OpenBLAS (pthreads) from ", before,
                                    " threads to one per call: searches run side by side on "
                                    "the server's own threads instead")};
}

}  // namespace probity::index
