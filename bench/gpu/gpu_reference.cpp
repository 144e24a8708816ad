// The FAISS GPU reference in a build with FAISS's GPU module (see gpu_reference.h).
#include "gpu_reference.h"

#include <cuda_runtime_api.h>
#include <faiss/gpu/GpuCloner.h>
#include <faiss/gpu/GpuIndexIVFPQ.h>
#include <faiss/gpu/StandardGpuResources.h>

#include <exception>
#include <regex>

#include "absl/strings/str_cat.h"

namespace probity::bench {
namespace {

class FaissGpuIvfPq final : public FaissGpuReference {
 public:
  FaissGpuIvfPq(std::unique_ptr<faiss::gpu::StandardGpuResources> resources,
                std::unique_ptr<faiss::gpu::GpuIndexIVFPQ> index)
      : resources_(std::move(resources)), index_(std::move(index)) {}

  absl::Status Add(std::span<const float> vectors, std::span<const int64_t> ids) override {
    try {
      index_->add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), vectors.data(),
                           ids.data());
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS GPU add: ", e.what()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<int64_t>> Search(std::span<const float> queries, int k,
                                              int nprobe) override {
    const int64_t n = static_cast<int64_t>(queries.size()) / index_->d;
    labels_.resize(n * k);
    distances_.resize(n * k);
    try {
      index_->setNumProbes(nprobe);
      index_->search(n, queries.data(), k, distances_.data(), labels_.data());
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS GPU search: ", e.what()));
    }
    return labels_;
  }

  absl::StatusOr<std::unique_ptr<index::ShardedIndex>> ToShardedIndex(
      const index::CollectionSpec& spec) const override {
    std::vector<std::unique_ptr<faiss::Index>> shards;
    try {
      shards.emplace_back(faiss::gpu::index_gpu_to_cpu(index_.get()));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS GPU to CPU copy: ", e.what()));
    }
    return index::ShardedIndex::FromShards(spec, std::move(shards), {});
  }

 private:
  std::unique_ptr<faiss::gpu::StandardGpuResources> resources_;
  std::unique_ptr<faiss::gpu::GpuIndexIVFPQ> index_;
  std::vector<faiss::Index::idx_t> labels_;
  std::vector<float> distances_;
};

}  // namespace

bool GpuReferenceAvailable() { return true; }

std::string GpuName(int device) {
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) return "unknown GPU";
  return absl::StrCat(properties.name, " (", properties.totalGlobalMem >> 30, " GiB, sm_",
                      properties.major, properties.minor, ")");
}

absl::StatusOr<std::unique_ptr<FaissGpuReference>> FaissGpuReference::Train(
    const index::CollectionSpec& spec, std::span<const float> sample, int device) {
  std::smatch match;
  static const std::regex kIvfPq(R"(IVF(\d+),PQ(\d+)(x8)?)");
  if (!std::regex_match(spec.factory, match, kIvfPq)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the FAISS GPU reference takes IVF<n>,PQ<m> specs, not ", spec.factory));
  }
  const int nlist = std::stoi(match[1].str());
  const int sub_quantizers = std::stoi(match[2].str());
  const faiss::MetricType metric =
      spec.metric == index::Metric::kInnerProduct ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
  try {
    auto resources = std::make_unique<faiss::gpu::StandardGpuResources>();
    faiss::gpu::GpuIndexIVFPQConfig config;
    config.device = device;
    // As Probity's GPU shards (index::GpuOptions defaults): PQ64's float32 lookup tables do not
    // fit in shared memory, and ids stay on the GPU.
    config.useFloat16LookupTables = true;
    config.indicesOptions = faiss::gpu::INDICES_64_BIT;
    auto gpu_index = std::make_unique<faiss::gpu::GpuIndexIVFPQ>(resources.get(), spec.dim, nlist,
                                                                 sub_quantizers, 8, metric, config);
    gpu_index->train(static_cast<faiss::Index::idx_t>(sample.size() / spec.dim), sample.data());
    return std::make_unique<FaissGpuIvfPq>(std::move(resources), std::move(gpu_index));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("FAISS GPU train: ", e.what()));
  }
}

}  // namespace probity::bench
