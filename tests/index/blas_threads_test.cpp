// A serving process limits OpenBLAS's pthreads pool to one thread per call, and only that BLAS.
#include "probity/index/blas_threads.h"

#include <gtest/gtest.h>

extern "C" {
int openblas_get_parallel() __attribute__((weak));
int openblas_get_num_threads() __attribute__((weak));
void openblas_set_num_threads(int threads) __attribute__((weak));
}

namespace probity::index {
namespace {

TEST(BlasThreadsTest, OpenBlasWithPthreadsIsLimitedToOneThreadPerCall) {
  if (openblas_get_parallel == nullptr || openblas_get_parallel() != 1) {
    // Debian's default libblas.so.3 is OpenBLAS with pthreads; the GPU bundle links the OpenMP
    // build. Elsewhere the helper must leave BLAS alone, which the next test checks.
    GTEST_SKIP() << "BLAS here is not OpenBLAS's pthreads build";
  }
  // As a fresh process has it on a machine with several cores.
  openblas_set_num_threads(2);
  const int before = openblas_get_num_threads();
  const BlasThreading result = UseOneBlasThreadForServing();
  EXPECT_EQ(openblas_get_num_threads(), 1);
  EXPECT_EQ(result.changed, before != 1) << result.description;
  EXPECT_NE(result.description.find("pthreads"), std::string::npos) << result.description;
  // Once limited, again is no change.
  EXPECT_FALSE(UseOneBlasThreadForServing().changed);
}

TEST(BlasThreadsTest, AnythingButOpenBlasWithPthreadsIsLeftAlone) {
  if (openblas_get_parallel != nullptr && openblas_get_parallel() == 1) {
    GTEST_SKIP() << "BLAS here is OpenBLAS's pthreads build (the previous test covers it)";
  }
  const int before = openblas_get_num_threads != nullptr ? openblas_get_num_threads() : -1;
  const BlasThreading result = UseOneBlasThreadForServing();
  EXPECT_FALSE(result.changed) << result.description;
  EXPECT_NE(result.description.find("left as they are"), std::string::npos) << result.description;
  if (openblas_get_num_threads != nullptr) {
    EXPECT_EQ(openblas_get_num_threads(), before);
  }
}

}  // namespace
}  // namespace probity::index
