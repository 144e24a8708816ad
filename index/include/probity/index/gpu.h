#pragma once

// GPU shards: the public face of the GPU path. Everything here compiles in every build; only a
// build configured with -DPROBITY_GPU=ON (FAISS with its GPU module) can create a GpuRuntime.
// A CPU-only build refuses a GPU configuration instead of silently searching on the CPU.
//
// Placement: every held shard of a collection is cloned onto one GPU, round-robin over
// GpuOptions::devices in shard order (several shards per GPU are fine), copies_per_shard times
// so that as many searches of one shard can run on its GPU at once. The CPU copy of each
// shard stays in host memory as the authoritative copy: generations are written from it, and
// erasure removes from it and re-clones the shard (GpuIndexIVFPQ cannot remove ids in 1.7.3).

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/index/types.h"

namespace faiss {
struct Index;
}

namespace probity::index {

// Where a GPU shard keeps the caller's 64-bit ids (faiss::gpu::IndicesOptions).
enum class GpuIdPlacement {
  kGpu,  // INDICES_64_BIT: 8 bytes per vector of GPU memory; results come back as ids
  kCpu,  // INDICES_CPU: no GPU memory for ids; FAISS maps (list, offset) to ids on the host
};
std::string GpuIdPlacementName(GpuIdPlacement placement);                     // "gpu" or "cpu"
absl::StatusOr<GpuIdPlacement> ParseGpuIdPlacement(const std::string& name);  // "gpu", "cpu"

// How a thread waits for its GPU search to finish (CUDA's device scheduling flags, set on each
// configured device when the runtime is created). FAISS waits once or more per search, on the
// searching thread: a spinning wait keeps a core busy for the whole search, so a server with
// several searches in flight per GPU (copies_per_shard, several shards) spends as many cores
// on waiting, which its gRPC threads and ledger then lack.
enum class GpuHostWait {
  kAuto,   // cudaDeviceScheduleAuto: CUDA's choice, which spins unless contexts outnumber cores
  kSpin,   // cudaDeviceScheduleSpin: the lowest latency; a core per waiting search
  kYield,  // cudaDeviceScheduleYield: spins, yielding the core to any other runnable thread
  kBlock,  // cudaDeviceScheduleBlockingSync: sleeps until the GPU is done (no core; a wake-up)
};
inline constexpr std::array<GpuHostWait, 4> kGpuHostWaits = {
    GpuHostWait::kAuto, GpuHostWait::kSpin, GpuHostWait::kYield, GpuHostWait::kBlock};
std::string GpuHostWaitName(GpuHostWait wait);                          // "auto", "spin", ...
absl::StatusOr<GpuHostWait> ParseGpuHostWait(const std::string& name);  // the names above

struct GpuOptions {
  std::vector<int> devices;  // CUDA device ordinals; empty means the CPU path
  // IVFPQ lookup tables in float16 (GpuClonerOptions::useFloat16): needed for PQ64 and larger,
  // whose float32 tables do not fit in shared memory; recall changes by about 1e-4.
  bool float16_lookup_tables = true;
  GpuIdPlacement ids = GpuIdPlacement::kGpu;
  // FAISS's scratch memory per GPU (StandardGpuResources::setTempMemory), in MiB; -1 keeps
  // FAISS's default. FAISS caps it at 1536 MiB (512 MiB on <= 4 GiB GPUs, 1 GiB on <= 8 GiB).
  int64_t temp_memory_mb = -1;
  // GPU copies of each shard, each searched through a FAISS resources object of its own (its
  // own CUDA stream and scratch memory), so that this many searches of one shard run on its GPU
  // at once instead of queueing for one copy. Why: a search of a few dozen queries leaves most
  // of a large GPU idle for most of its time (kernel launches, copies, synchronisation), which
  // a second search can fill. Costs this many times the shard's GPU memory and scratch memory.
  int copies_per_shard = 1;
  GpuHostWait host_wait = GpuHostWait::kAuto;
};

inline constexpr int kMaxGpuCopiesPerShard = 16;

// Checks devices (non-empty, no duplicates, not negative), temp_memory_mb (>= -1) and
// copies_per_shard (1 to kMaxGpuCopiesPerShard).
absl::Status ValidateGpuOptions(const GpuOptions& options);

// True when this binary was built with -DPROBITY_GPU=ON.
bool GpuBuild();

// ---- Memory estimate (pure functions, no CUDA) ----

// What FAISS will place on a GPU for one shard.
struct GpuShardShape {
  enum class Kind { kIvf, kFlat };
  Kind kind = Kind::kIvf;
  int dim = 0;  // dimension the GPU index sees (after any pre-transform, which stays on the CPU)
  int64_t num_vectors = 0;
  int64_t nlist = 0;      // IVF only
  int64_t code_size = 0;  // IVF only: bytes per stored code (PQ64x8: 64)
  int64_t pq_ksub = 0;    // IVFPQ only: centroids per sub-quantizer (256 for 8-bit codes)
  // IVF only: FAISS 1.7.3 lays IVF-Flat and IVF-SQ lists out interleaved in blocks of 32
  // vectors (codes padded to a whole block); IVF-PQ lists are not interleaved (1).
  int64_t interleave = 1;
  // IVF only: vectors per inverted list. Empty means num_vectors spread evenly.
  std::vector<int64_t> list_sizes;
};

// FAISS allocates each inverted list's codes and ids separately, rounded up to this many bytes
// (StandardGpuResources rounds to 256; cudaMalloc hands out at least 512).
inline constexpr int64_t kGpuAllocationGranularity = 512;
// Per GPU, for the CUDA context's cuBLAS handle and workspace, streams and FAISS's small
// bookkeeping allocations; kept free on top of the estimate.
inline constexpr int64_t kGpuReservePerDevice = int64_t{256} << 20;

struct GpuMemoryEstimate {
  int64_t codes = 0;             // stored codes (IVF) or raw float vectors (Flat)
  int64_t ids = 0;               // 8 bytes per vector with GpuIdPlacement::kGpu, else 0
  int64_t list_overhead = 0;     // rounding of per-list allocations, per-list pointers/lengths
  int64_t coarse_centroids = 0;  // IVF coarse quantizer (float32 centroids and their norms)
  int64_t pq_tables = 0;         // PQ codebooks (ksub x dim floats)
  int64_t total() const { return codes + ids + list_overhead + coarse_centroids + pq_tables; }
};

GpuMemoryEstimate EstimateShardGpuMemory(const GpuShardShape& shape, const GpuOptions& options);

// The shape of a CPU FAISS index as the GPU cloner will see it (needs no CUDA). Refuses index
// types the GPU cloner cannot take (e.g. fast-scan "x4fs" IVF).
absl::StatusOr<GpuShardShape> GpuShardShapeOf(const faiss::Index& index);

// FAISS's scratch allocation on a GPU with `device_total_bytes` memory for these options
// (StandardGpuResourcesImpl::getDefaultTempMemForGPU's rule).
int64_t GpuTempMemoryBytes(const GpuOptions& options, int64_t device_total_bytes);

// Round-robin: the i-th entry of `shards` goes to devices[i % devices.size()]. Returns the
// device of each entry of `shards`.
std::vector<int> PlanGpuPlacement(const std::vector<int>& shards, const std::vector<int>& devices);

// What one GPU must hold for a load, against what it has free now.
struct GpuDeviceNeed {
  int device = 0;
  int num_shards = 0;
  int copies_per_shard = 1;
  int64_t shard_bytes = 0;    // the estimates of the shards placed here, times their copies
  int64_t temp_bytes = 0;     // FAISS scratch of every copy, when not allocated yet
  int64_t reserve_bytes = 0;  // kGpuReservePerDevice, when the device is not in use yet
  int64_t free_bytes = 0;     // cudaMemGetInfo's free memory now
  int64_t needed() const { return shard_bytes + temp_bytes + reserve_bytes; }
};

// What `device` must hold for the shards placed on it (`estimates`, one per shard), with
// options.copies_per_shard copies of each; scratch and reserve only when the device holds
// nothing yet (`in_use` false), as FAISS allocates its scratch once per resources object.
GpuDeviceNeed NeedOnDevice(int device, const std::vector<GpuMemoryEstimate>& estimates,
                           const GpuOptions& options, int64_t free_bytes, int64_t total_bytes,
                           bool in_use);

// OK when every GPU has room; otherwise RESOURCE_EXHAUSTED naming, for every GPU short of
// memory, what it needs and what it has free.
absl::Status CheckGpuMemory(const std::vector<GpuDeviceNeed>& needs);

// ---- Runtime (needs a GPU build and GPUs) ----

// The GPUs of one process: per device, copies_per_shard faiss::gpu::StandardGpuResources, each
// with a mutex, shared by every collection and generation placed on it (copy i of every shard
// on a device uses that device's resources i). FAISS's GPU indexes and resources are not safe
// for concurrent use, so every search, add and clone of a copy holds its resources' mutex.
// Loads are serialized so that two loads cannot both pass the memory check.
class GpuRuntime {
 public:
  // Refuses (FAILED_PRECONDITION) in a CPU-only build, when CUDA finds no GPU, when a
  // configured device does not exist, or when a device is of an architecture this build has
  // no kernels for.
  static absl::StatusOr<std::shared_ptr<GpuRuntime>> Create(const GpuOptions& options);

  virtual ~GpuRuntime() = default;
  const GpuOptions& options() const { return options_; }

  // Free and total memory of a configured device now (cudaMemGetInfo).
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> MemoryInfo(int device) const = 0;

 protected:
  explicit GpuRuntime(GpuOptions options) : options_(std::move(options)) {}

 private:
  GpuOptions options_;
};

// Number of CUDA devices visible to this process (0 in a CPU-only build or without a driver).
int GpuDeviceCount();

}  // namespace probity::index
