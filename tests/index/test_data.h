#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/scoped_temp_dir.h"

extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace probity::index::testing {

// Unit-test collections are tiny: OpenMP and OpenBLAS thread teams cost far more than the work,
// and on a shared machine busy-waiting teams can stall a test for minutes.
inline bool UseOneThread() {
  omp_set_num_threads(1);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  return true;
}

// Gaussian rows, optionally scaled to unit length. Continuous values make score ties
// vanishingly unlikely, which the exact-equality tests rely on.
inline std::vector<float> RandomRows(int64_t rows, int dim, uint64_t seed, bool unit = true) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> data(rows * dim);
  for (float& x : data) x = normal(rng);
  if (unit) {
    for (int64_t r = 0; r < rows; ++r) {
      float* row = data.data() + r * dim;
      double norm2 = 0;
      for (int c = 0; c < dim; ++c) norm2 += row[c] * row[c];
      for (int c = 0; c < dim; ++c) row[c] = static_cast<float>(row[c] / std::sqrt(norm2));
    }
  }
  return data;
}

inline std::vector<int64_t> SequentialIds(int64_t count, int64_t first = 0) {
  std::vector<int64_t> ids(count);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

using ScratchDir = test_support::ScopedTempDir;

}  // namespace probity::index::testing
