// The FAISS GPU reference in a build without FAISS's GPU module: the benchmark runs its CPU
// parts only.
#include "gpu_reference.h"

namespace probity::bench {

bool GpuReferenceAvailable() { return false; }

std::string GpuName(int) { return "none"; }

absl::StatusOr<std::unique_ptr<FaissGpuReference>> FaissGpuReference::Train(
    const index::CollectionSpec&, std::span<const float>, int) {
  return absl::FailedPreconditionError(
      "this build's FAISS has no GPU module (configure with -DPROBITY_GPU=ON)");
}

}  // namespace probity::bench
