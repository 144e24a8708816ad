#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

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

// A fresh directory under the system temp dir, removed when the test ends.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device entropy;
    path_ = std::filesystem::temp_directory_path() /
            ("probity-index-test-" + std::to_string(entropy()) + std::to_string(entropy()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace probity::index::testing
