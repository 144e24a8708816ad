// The GPU entry points of a CPU-only build (without -DPROBITY_GPU=ON): every one refuses with
// the same reason, so that a GPU configuration never silently runs on the CPU.

#include "absl/strings/str_cat.h"
#include "gpu_shard.h"
#include "probity/index/gpu.h"

namespace probity::index {
namespace {

absl::Status NotBuilt(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what,
                   ": this probity was built without GPU support; build FAISS with "
                   "deploy/build-faiss-gpu.sh and configure with cmake -DPROBITY_GPU=ON"));
}

}  // namespace

bool GpuBuild() { return false; }

int GpuDeviceCount() { return 0; }

absl::StatusOr<std::shared_ptr<GpuRuntime>> GpuRuntime::Create(const GpuOptions& options) {
  if (absl::Status s = ValidateGpuOptions(options); !s.ok()) return s;
  return NotBuilt(absl::StrCat("GPUs are configured (", options.devices.size(), " device(s))"));
}

namespace internal {

absl::StatusOr<std::vector<std::unique_ptr<GpuShard>>> PlaceShardsOnGpus(
    GpuRuntime& /*runtime*/, const std::vector<const faiss::Index*>& /*shards*/) {
  return NotBuilt("placing shards on GPUs");
}

absl::Status TrainOnGpu(faiss::Index& /*index*/, int64_t /*n*/, const float* /*x*/, int device,
                        bool /*train_pq*/) {
  return NotBuilt(absl::StrCat("training on GPU ", device));
}

}  // namespace internal
}  // namespace probity::index
