// Training on a GPU (-DPROBITY_GPU=ON builds): FAISS's billion-scale recipe. The k-means of the
// IVF coarse quantizer assigns points through a GPU flat index (IndexIVF::clustering_index),
// which makes 65,536 to 1,048,576 lists practical; optionally the PQ codebooks' k-means too
// (ProductQuantizer::assign_index). The trained index is an ordinary CPU index afterwards.
//
// HNSW coarse quantizers ("IVF1048576_HNSW32,PQ64", FAISS's recipe for a billion vectors) train
// the same way: FAISS marks them quantizer_trains_alone = 2, so the k-means runs on the
// clustering index (here the GPU) and only its final centroids are added to the HNSW graph,
// which FAISS builds on the CPU. The vectors' assignment for the PQ's residuals then goes
// through that graph (efSearch kHnswMinEfSearch, set by CreateIndex).

#include <cuda_runtime.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/gpu/GpuIndexFlat.h>
#include <faiss/gpu/StandardGpuResources.h>

#include "absl/strings/str_cat.h"
#include "faiss_search.h"
#include "gpu_shard.h"

namespace probity::index::internal {
namespace {

// Puts a pointer member back to null however training ends, so the index never keeps a
// pointer to the GPU index (clone_index and write_index would otherwise see it).
template <typename T>
class ResetOnExit {
 public:
  explicit ResetOnExit(T*& member) : member_(member) {}
  ~ResetOnExit() { member_ = nullptr; }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  T*& member_;
};

}  // namespace

absl::Status TrainOnGpu(faiss::Index& index, int64_t n, const float* x, int device, bool train_pq) {
  auto* ivf = const_cast<faiss::IndexIVF*>(FindIvf(index));
  if (ivf == nullptr) {
    return absl::InvalidArgumentError(
        "--gpu trains the k-means of IVF indexes; this spec has no inverted lists");
  }
  // FAISS's GPU module asserts (ends the process) when CUDA finds no device; ask CUDA first.
  int devices = 0;
  const cudaError_t counted = cudaGetDeviceCount(&devices);
  if (counted != cudaSuccess || device >= devices) {
    return absl::FailedPreconditionError(absl::StrCat(
        "training on GPU ", device, ": CUDA finds ",
        counted == cudaSuccess ? absl::StrCat(devices, " device(s)") : cudaGetErrorString(counted),
        " on this machine"));
  }
  try {
    faiss::gpu::StandardGpuResources resources;
    faiss::gpu::GpuIndexFlatConfig config;
    config.device = device;
    // With quantizer_trains_alone = 2 FAISS's CPU k-means assigns with an L2 flat index (for
    // inner product the clustering is spherical, where L2 and inner product rank alike); the
    // GPU does the same so that GPU and CPU training agree.
    const faiss::MetricType assign_metric =
        ivf->quantizer_trains_alone == 2 ? faiss::METRIC_L2 : ivf->quantizer->metric_type;
    faiss::gpu::GpuIndexFlat coarse(&resources, ivf->d, assign_metric, config);
    ResetOnExit<faiss::Index> reset_coarse(ivf->clustering_index);
    ivf->clustering_index = &coarse;

    std::unique_ptr<faiss::gpu::GpuIndexFlat> pq_assign;
    auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf);
    if (train_pq && ivfpq == nullptr) {
      return absl::InvalidArgumentError("--gpu-pq needs an IVF-PQ spec");
    }
    std::unique_ptr<ResetOnExit<faiss::Index>> reset_pq;
    if (train_pq) {
      // PQ k-means is always L2 on sub-vectors of dimension dsub.
      pq_assign = std::make_unique<faiss::gpu::GpuIndexFlat>(
          &resources, static_cast<int>(ivfpq->pq.dsub), faiss::METRIC_L2, config);
      reset_pq = std::make_unique<ResetOnExit<faiss::Index>>(ivfpq->pq.assign_index);
      ivfpq->pq.assign_index = pq_assign.get();
    }
    index.train(n, x);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training on GPU ", device, ": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace probity::index::internal
