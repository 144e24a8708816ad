// The GPU runtime of a -DPROBITY_GPU=ON build: one StandardGpuResources and one mutex per
// device, shard placement with the memory check, and GPU shards that serialize every use of a
// device. FAISS's errors (exceptions) become absl::Status here.

#include <cuda_runtime.h>
#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/clone_index.h>
#include <faiss/gpu/GpuCloner.h>
#include <faiss/gpu/GpuClonerOptions.h>
#include <faiss/gpu/GpuIndexIVF.h>
#include <faiss/gpu/StandardGpuResources.h>
#include <faiss/gpu/utils/DeviceUtils.h>
#include <faiss/impl/FaissException.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "faiss_search.h"
#include "gpu_shard.h"
#include "probity/index/gpu.h"

#ifndef PROBITY_CUDA_ARCHITECTURES
#define PROBITY_CUDA_ARCHITECTURES ""
#endif

namespace probity::index {
namespace {

absl::Status CudaError(cudaError_t error, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(what, ": CUDA error ", cudaGetErrorName(error),
                                                    " (", cudaGetErrorString(error), ")"));
}

// The lowest compute capability (major * 10 + minor) FAISS's kernels were built for, or 0
// when the list does not say (e.g. "native", "all"): a GPU below it has no kernels to run.
int LowestBuiltArchitecture() {
  int lowest = 0;
  for (absl::string_view entry : absl::StrSplit(PROBITY_CUDA_ARCHITECTURES, ';')) {
    entry = entry.substr(0, entry.find('-'));  // "90-real" -> "90"
    int arch = 0;
    if (!absl::SimpleAtoi(entry, &arch)) return 0;
    lowest = lowest == 0 ? arch : std::min(lowest, arch);
  }
  return lowest;
}

unsigned ScheduleFlag(GpuHostWait wait) {
  switch (wait) {
    case GpuHostWait::kAuto:
      return cudaDeviceScheduleAuto;
    case GpuHostWait::kSpin:
      return cudaDeviceScheduleSpin;
    case GpuHostWait::kYield:
      return cudaDeviceScheduleYield;
    case GpuHostWait::kBlock:
      return cudaDeviceScheduleBlockingSync;
  }
  return cudaDeviceScheduleAuto;
}

// Makes threads wait for GPU `ordinal` as `wait` says, and checks that CUDA took it. The flags
// belong to the device's one context in this process, and CUDA 13 overwrites them even once the
// device is in use: the last runtime created with a host_wait other than "auto" decides for the
// whole process ("auto" leaves the flags as they are, CUDA's own default unless changed).
absl::Status SetHostWait(int ordinal, GpuHostWait wait) {
  if (wait == GpuHostWait::kAuto) return absl::OkStatus();
  int previous = 0;
  if (cudaError_t e = cudaGetDevice(&previous); e != cudaSuccess) {
    return CudaError(e, "cudaGetDevice");
  }
  unsigned flags = 0;
  cudaError_t e = cudaSetDevice(ordinal);
  if (e == cudaSuccess) e = cudaSetDeviceFlags(ScheduleFlag(wait));
  if (e == cudaSuccess) e = cudaGetDeviceFlags(&flags);
  cudaSetDevice(previous);
  if (e != cudaSuccess) {
    return CudaError(e, absl::StrCat("GPU ", ordinal, ": setting host_wait \"",
                                     GpuHostWaitName(wait), "\" (cudaSetDeviceFlags)"));
  }
  if ((flags & cudaDeviceScheduleMask) != ScheduleFlag(wait)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GPU ", ordinal, ": CUDA kept scheduling flags ", flags & cudaDeviceScheduleMask,
        " instead of host_wait \"", GpuHostWaitName(wait), "\""));
  }
  return absl::OkStatus();
}

// One FAISS resources object (its CUDA stream, cuBLAS handle and scratch memory) and the mutex
// that serializes every use of it: searches, adds, clones and frees. Copy i of every shard on a
// device goes through that device's context i, so copies of one shard never wait for each other.
struct GpuContext {
  faiss::gpu::StandardGpuResources resources;
  std::mutex mutex;
};

struct Device {
  int ordinal = 0;
  int64_t total_bytes = 0;
  std::vector<std::unique_ptr<GpuContext>> contexts;  // GpuOptions::copies_per_shard of them
  // Set once something has been cloned here: FAISS's scratch memory is allocated then.
  std::atomic<bool> in_use{false};
};

class CudaGpuRuntime : public GpuRuntime, public std::enable_shared_from_this<CudaGpuRuntime> {
 public:
  explicit CudaGpuRuntime(GpuOptions options) : GpuRuntime(std::move(options)) {}

  absl::Status Init() {
    for (int ordinal : options().devices) {
      if (absl::Status s = SetHostWait(ordinal, options().host_wait); !s.ok()) return s;
      auto device = std::make_unique<Device>();
      device->ordinal = ordinal;
      try {
        device->total_bytes =
            static_cast<int64_t>(faiss::gpu::getDeviceProperties(ordinal).totalGlobalMem);
        for (int c = 0; c < options().copies_per_shard; ++c) {
          auto context = std::make_unique<GpuContext>();
          if (options().temp_memory_mb >= 0) {
            context->resources.setTempMemory(static_cast<size_t>(options().temp_memory_mb) << 20);
          }
          device->contexts.push_back(std::move(context));
        }
      } catch (const std::exception& e) {
        return absl::FailedPreconditionError(absl::StrCat("GPU ", ordinal, ": ", e.what()));
      }
      devices_[ordinal] = std::move(device);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::pair<int64_t, int64_t>> MemoryInfo(int device) const override {
    if (!devices_.contains(device)) {
      return absl::NotFoundError(absl::StrCat("GPU ", device, " is not configured"));
    }
    int previous = 0;
    if (cudaError_t e = cudaGetDevice(&previous); e != cudaSuccess) {
      return CudaError(e, "cudaGetDevice");
    }
    size_t free_bytes = 0, total_bytes = 0;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_bytes, &total_bytes);
    cudaSetDevice(previous);
    if (e != cudaSuccess) return CudaError(e, absl::StrCat("cudaMemGetInfo on GPU ", device));
    return std::make_pair(static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes));
  }

  Device& device(int ordinal) { return *devices_.at(ordinal); }
  std::mutex& placement_mutex() { return placement_mutex_; }

  faiss::gpu::GpuClonerOptions ClonerOptions() const {
    faiss::gpu::GpuClonerOptions cloner;
    cloner.useFloat16 = options().float16_lookup_tables;
    cloner.indicesOptions = options().ids == GpuIdPlacement::kGpu ? faiss::gpu::INDICES_64_BIT
                                                                  : faiss::gpu::INDICES_CPU;
    return cloner;
  }

 private:
  std::map<int, std::unique_ptr<Device>> devices_;
  std::mutex placement_mutex_;
};

// The GpuIndexIVF under an optional pre-transform (which FAISS keeps on the CPU), or nullptr.
faiss::gpu::GpuIndexIVF* FindGpuIvf(faiss::Index& index) {
  faiss::Index* current = &index;
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(current)) current = pre->index;
  return dynamic_cast<faiss::gpu::GpuIndexIVF*>(current);
}
const faiss::gpu::GpuIndexIVF* FindGpuIvf(const faiss::Index& index) {
  return FindGpuIvf(const_cast<faiss::Index&>(index));
}

// Gives a GPU IVF index whose coarse quantizer FAISS cannot run on a GPU (HNSW) a CPU copy of
// the CPU index's quantizer, storage included. Why: FAISS 1.7.3's GPU cloner copies such a
// quantizer with the CPU cloner's code but its own virtual calls, so the HNSW graph comes back
// on the CPU with its flat storage turned into a GpuIndexFlat. Searching that graph asks the
// storage for a distance computer, which a GpuIndexFlat does not have: FAISS throws inside an
// OpenMP region and the process ends (std::terminate). FAISS's GPU IVF searches a CPU
// quantizer through host copies, which is what serving HNSW shards from a GPU means.
void KeepCoarseQuantizerOnCpu(const faiss::Index& cpu, faiss::Index& gpu) {
  faiss::gpu::GpuIndexIVF* gpu_ivf = FindGpuIvf(gpu);
  const faiss::IndexIVF* cpu_ivf = internal::FindIvf(cpu);
  if (gpu_ivf == nullptr || cpu_ivf == nullptr) return;
  if (faiss::gpu::isGpuIndex(gpu_ivf->quantizer)) return;  // a flat quantizer on the GPU
  std::unique_ptr<faiss::Index> on_cpu(faiss::clone_index(cpu_ivf->quantizer));
  if (gpu_ivf->own_fields) delete gpu_ivf->quantizer;
  gpu_ivf->quantizer = on_cpu.release();
  gpu_ivf->own_fields = true;
}

// Clones `cpu` onto `device` through `context`; the caller holds the context's mutex.
absl::StatusOr<std::unique_ptr<faiss::Index>> CloneTo(CudaGpuRuntime& runtime, Device& device,
                                                      GpuContext& context,
                                                      const faiss::Index& cpu) {
  try {
    const faiss::gpu::GpuClonerOptions options = runtime.ClonerOptions();
    std::unique_ptr<faiss::Index> gpu(
        faiss::gpu::index_cpu_to_gpu(&context.resources, device.ordinal, &cpu, &options));
    device.in_use = true;
    KeepCoarseQuantizerOnCpu(cpu, *gpu);
    return gpu;
  } catch (const std::exception& e) {
    // FAISS reports a failed allocation as an exception naming the memory it wanted; anything
    // else is a shard the GPU module cannot take (e.g. an unsupported sub-quantizer size).
    const std::string message = e.what();
    const std::string what =
        absl::StrCat("cloning a shard onto GPU ", device.ordinal, ": ", message);
    if (message.find("memory") != std::string::npos || message.find("alloc") != std::string::npos) {
      return absl::ResourceExhaustedError(what);
    }
    return absl::InvalidArgumentError(what);
  }
}

// One GPU copy of a shard and the context it was cloned with.
struct ShardCopy {
  GpuContext* context = nullptr;
  std::unique_ptr<faiss::Index> index;  // null once freed (a re-clone failed)
};

// Frees every copy's GPU memory, each under its context's mutex (StandardGpuResources is not
// thread-safe).
void FreeCopies(std::vector<ShardCopy>& copies) {
  for (ShardCopy& copy : copies) {
    std::lock_guard lock(copy.context->mutex);
    copy.index.reset();
  }
}

// The GPU copies of one shard (GpuOptions::copies_per_shard), copy i on the device's context i.
// A search takes a free copy, or waits for one; an add or re-clone changes every copy.
class CudaGpuShard : public internal::GpuShard {
 public:
  // `bytes_per_vector`: GPU bytes one more stored vector takes (code, and id when on the GPU).
  CudaGpuShard(std::shared_ptr<CudaGpuRuntime> runtime, int device, std::vector<ShardCopy> copies,
               int64_t bytes_per_vector)
      : runtime_(std::move(runtime)),
        device_(runtime_->device(device)),
        copies_(std::move(copies)),
        bytes_per_vector_(bytes_per_vector) {}

  ~CudaGpuShard() override { FreeCopies(copies_); }

  int device() const override { return device_.ordinal; }

  absl::Status Search(int64_t num_queries, const float* queries, int k, int nprobe,
                      float* distances, int64_t* labels) const override {
    // The first free copy from a rotating start, so that concurrent searches spread over the
    // copies; when every copy is busy, wait for the one at the start.
    const size_t count = copies_.size();
    const size_t start =
        count == 1 ? 0 : next_copy_.fetch_add(1, std::memory_order_relaxed) % count;
    for (size_t i = 0; i < count; ++i) {
      const ShardCopy& copy = copies_[(start + i) % count];
      std::unique_lock lock(copy.context->mutex, std::try_to_lock);
      if (lock.owns_lock())
        return SearchCopy(copy, num_queries, queries, k, nprobe, distances, labels);
    }
    const ShardCopy& copy = copies_[start];
    std::lock_guard lock(copy.context->mutex);
    return SearchCopy(copy, num_queries, queries, k, nprobe, distances, labels);
  }

  absl::Status CheckRoomToAdd(int64_t n) const override {
    absl::StatusOr<std::pair<int64_t, int64_t>> memory = runtime_->MemoryInfo(device_.ordinal);
    if (!memory.ok()) return memory.status();
    // Appending grows each touched list to the next power of two, so up to twice the payload
    // may be allocated while the old list is copied over; every copy grows.
    const int64_t needed =
        2 * n * bytes_per_vector_ * static_cast<int64_t>(copies_.size()) + kGpuReservePerDevice;
    if (needed > memory->first) {
      return absl::ResourceExhaustedError(
          absl::StrCat("GPU ", device_.ordinal, ": adding ", n, " vectors to ", copies_.size(),
                       " cop", copies_.size() == 1 ? "y" : "ies", " needs up to ", needed,
                       " bytes, ", memory->first, " free; nothing was added"));
    }
    return absl::OkStatus();
  }

  absl::Status Add(int64_t n, const float* vectors, const int64_t* ids) override {
    for (ShardCopy& copy : copies_) {
      std::lock_guard lock(copy.context->mutex);
      if (copy.index == nullptr) return Lost();
      try {
        copy.index->add_with_ids(n, vectors, ids);
      } catch (const std::exception& e) {
        return absl::ResourceExhaustedError(
            absl::StrCat("GPU ", device_.ordinal, ": adding vectors: ", e.what()));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Reclone(const faiss::Index& cpu) override {
    FreeCopies(copies_);  // first: the new clones need the room the old ones held
    for (ShardCopy& copy : copies_) {
      std::unique_lock lock(copy.context->mutex);
      absl::StatusOr<std::unique_ptr<faiss::Index>> clone =
          CloneTo(*runtime_, device_, *copy.context, cpu);
      lock.unlock();
      if (!clone.ok()) {
        // All or nothing: a shard with some copies would answer from some and not others.
        FreeCopies(copies_);
        return clone.status();
      }
      lock.lock();
      copy.index = *std::move(clone);
    }
    return absl::OkStatus();
  }

 private:
  // One copy's search; the caller holds the copy's context mutex.
  absl::Status SearchCopy(const ShardCopy& copy, int64_t num_queries, const float* queries, int k,
                          int nprobe, float* distances, int64_t* labels) const {
    faiss::Index* index = copy.index.get();
    if (index == nullptr) return Lost();
    try {
      // nprobe goes with the call (SearchParametersIVF), never onto the shared index. FAISS's
      // GPU IVF searches a CPU coarse quantizer without the call's parameters, so an HNSW one
      // (each copy has its own) gets the CPU shard's efSearch for this nprobe here, under the
      // copy's lock.
      faiss::gpu::GpuIndexIVF* ivf = FindGpuIvf(*index);
      if (ivf != nullptr) {
        if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(ivf->quantizer); hnsw != nullptr) {
          hnsw->hnsw.efSearch = internal::HnswEfSearch(nprobe);
        }
      }
      if (ivf == nullptr) {
        index->search(num_queries, queries, k, distances, labels);
      } else if (index == static_cast<faiss::Index*>(ivf)) {
        faiss::SearchParametersIVF ivf_params;
        ivf_params.nprobe = nprobe;
        index->search(num_queries, queries, k, distances, labels, &ivf_params);
      } else {
        faiss::SearchParametersIVF ivf_params;
        ivf_params.nprobe = nprobe;
        faiss::SearchParametersPreTransform pre_params;
        pre_params.index_params = &ivf_params;
        index->search(num_queries, queries, k, distances, labels, &pre_params);
      }
    } catch (const std::exception& e) {
      return absl::InternalError(
          absl::StrCat("GPU ", device_.ordinal, ": FAISS error: ", e.what()));
    }
    return absl::OkStatus();
  }

  absl::Status Lost() const {
    return absl::UnavailableError(
        absl::StrCat("this shard lost its copy on GPU ", device_.ordinal,
                     " (a re-clone failed); reload the collection's generation"));
  }

  std::shared_ptr<CudaGpuRuntime> runtime_;
  Device& device_;
  std::vector<ShardCopy> copies_;
  const int64_t bytes_per_vector_;
  mutable std::atomic<size_t> next_copy_{0};
};

}  // namespace

bool GpuBuild() { return true; }

int GpuDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

absl::StatusOr<std::shared_ptr<GpuRuntime>> GpuRuntime::Create(const GpuOptions& options) {
  if (absl::Status s = ValidateGpuOptions(options); !s.ok()) return s;
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("GPUs are configured but CUDA finds none (",
                     e == cudaSuccess ? "0 devices" : cudaGetErrorString(e),
                     "); refusing to start rather than search on the CPU"));
  }
  const int lowest_arch = LowestBuiltArchitecture();
  for (int device : options.devices) {
    if (device >= count) {
      return absl::FailedPreconditionError(absl::StrCat("GPU ", device,
                                                        " is configured but CUDA "
                                                        "finds only ",
                                                        count, " device(s)"));
    }
    cudaDeviceProp properties{};
    if (cudaError_t e = cudaGetDeviceProperties(&properties, device); e != cudaSuccess) {
      return CudaError(e, absl::StrCat("GPU ", device));
    }
    const int capability = properties.major * 10 + properties.minor;
    if (lowest_arch > 0 && capability < lowest_arch) {
      return absl::FailedPreconditionError(absl::StrCat(
          "GPU ", device, " (", properties.name, ") has compute capability ", properties.major, ".",
          properties.minor, " but FAISS's kernels were built for ", PROBITY_CUDA_ARCHITECTURES,
          "; rebuild with deploy/build-faiss-gpu.sh --cuda-architectures"));
    }
  }
  auto runtime = std::make_shared<CudaGpuRuntime>(options);
  if (absl::Status s = runtime->Init(); !s.ok()) return s;
  return runtime;
}

namespace internal {

absl::StatusOr<std::vector<std::unique_ptr<GpuShard>>> PlaceShardsOnGpus(
    GpuRuntime& base, const std::vector<const faiss::Index*>& shards) {
  auto& runtime = static_cast<CudaGpuRuntime&>(base);
  // One load at a time: two loads must not both pass the check against the same free memory.
  std::lock_guard one_load_at_a_time(runtime.placement_mutex());

  std::vector<int> held;
  std::vector<GpuMemoryEstimate> estimates(shards.size());
  std::vector<int64_t> bytes_per_vector(shards.size(), 0);
  for (size_t s = 0; s < shards.size(); ++s) {
    if (shards[s] == nullptr) continue;
    absl::StatusOr<GpuShardShape> shape = GpuShardShapeOf(*shards[s]);
    if (!shape.ok()) {
      return absl::Status(shape.status().code(),
                          absl::StrCat("shard ", s, ": ", shape.status().message()));
    }
    estimates[s] = EstimateShardGpuMemory(*shape, runtime.options());
    const bool ids_on_gpu = runtime.options().ids == GpuIdPlacement::kGpu;
    bytes_per_vector[s] = shape->kind == GpuShardShape::Kind::kFlat
                              ? int64_t{shape->dim} * 4 + 4
                              : shape->code_size + (ids_on_gpu ? 8 : 0);
    held.push_back(static_cast<int>(s));
  }
  const std::vector<int> placement = PlanGpuPlacement(held, runtime.options().devices);

  // Needed vs free per GPU. Free memory is measured now, so generations and collections
  // already on a GPU (e.g. the old generation during a swap) are accounted for.
  std::map<int, std::vector<GpuMemoryEstimate>> estimates_on;
  for (size_t i = 0; i < held.size(); ++i) estimates_on[placement[i]].push_back(estimates[held[i]]);
  std::vector<GpuDeviceNeed> per_device;
  for (const auto& [device, estimates_here] : estimates_on) {
    absl::StatusOr<std::pair<int64_t, int64_t>> memory = runtime.MemoryInfo(device);
    if (!memory.ok()) return memory.status();
    per_device.push_back(NeedOnDevice(device, estimates_here, runtime.options(), memory->first,
                                      memory->second, runtime.device(device).in_use));
  }
  if (absl::Status s = CheckGpuMemory(per_device); !s.ok()) return s;

  std::shared_ptr<CudaGpuRuntime> owner =
      std::static_pointer_cast<CudaGpuRuntime>(runtime.shared_from_this());
  std::vector<std::unique_ptr<GpuShard>> placed(shards.size());
  for (size_t i = 0; i < held.size(); ++i) {
    const int s = held[i];
    Device& device = runtime.device(placement[i]);
    std::vector<ShardCopy> copies;
    for (const std::unique_ptr<GpuContext>& context : device.contexts) {
      std::unique_lock lock(context->mutex);
      absl::StatusOr<std::unique_ptr<faiss::Index>> clone =
          CloneTo(runtime, device, *context, *shards[s]);
      if (!clone.ok()) {
        lock.unlock();
        // All or nothing: this shard's copies are freed here, the shards placed so far as
        // `placed` goes out of scope.
        FreeCopies(copies);
        return absl::Status(clone.status().code(),
                            absl::StrCat("shard ", s, ": ", clone.status().message()));
      }
      copies.push_back({context.get(), *std::move(clone)});
    }
    placed[s] = std::make_unique<CudaGpuShard>(owner, device.ordinal, std::move(copies),
                                               bytes_per_vector[s]);
  }
  return placed;
}

}  // namespace internal
}  // namespace probity::index
