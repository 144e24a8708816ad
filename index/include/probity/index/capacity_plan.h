#pragma once

// `probity plan`: what a collection of N vectors needs (shards, GPUs, servers, host RAM, disk,
// build time, search throughput), computed from bytes per vector and rates measured by
// Probity's benchmarks or by the FAISS references they compare against. Every figure carries
// the measurement or assumption behind it (bench/RESULTS.md, "Figures behind probity plan").
// A pure function: no I/O, no FAISS.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace probity::index {

struct PlanRequest {
  int64_t vectors = 0;
  int dim = 0;
  std::string factory;  // IVF<nlist>[_HNSW<M>],PQ<m>[x8] or IVF<nlist>[_HNSW<M>],Flat
  double gpu_memory_gib = 80;
  int gpus_per_server = 8;
  double host_ram_gib_per_server = 1024;
  // Share of each GPU's memory left free after the shard is placed (adds, fragmentation).
  double gpu_headroom = 0.10;
  // Copies of each shard on its GPU (the server's gpu.copies_per_shard, 1 to
  // kMaxGpuCopiesPerShard): each copy holds the whole shard and FAISS's scratch of its own, so a
  // GPU holds that many times fewer vectors.
  int gpu_copies_per_shard = 1;
  // CPU cores of each shard build (one build per shard runs at once on the cluster).
  int build_cores_per_shard = 16;
  // Searches recorded in the ledger over its retention, and the bytes of one search entry.
  int64_t ledger_searches = 100'000'000;
  int64_t ledger_entry_bytes = 1024;
  std::vector<int> nprobes = {8, 16, 32, 64, 128};
};

// One printed figure: its value and the measurement or arithmetic it comes from.
struct PlanFigure {
  std::string name;
  double value = 0;
  std::string unit;
  std::string basis;
};

struct PlanSearchRow {
  int nprobe = 0;
  double codes_per_query_per_shard = 0;
  double queries_per_second = 0;  // the cluster: every query visits every shard at once
};

struct CapacityPlan {
  // From the factory spec.
  int64_t nlist = 0;
  int hnsw_m = 0;         // 0: flat coarse quantizer
  int64_t code_size = 0;  // bytes of one stored code

  // What every shard file and GPU copy repeats: the coarse quantizer (nlist x d x 4 bytes)
  // and its norms, the PQ codebooks (twice on the GPU), the HNSW graph on the host.
  int64_t coarse_quantizer_bytes = 0;
  int64_t gpu_fixed_bytes_per_shard = 0;
  int64_t host_fixed_bytes_per_shard = 0;
  double gpu_bytes_per_vector = 0;
  double host_bytes_per_vector = 0;
  double disk_bytes_per_vector = 0;

  int64_t usable_gpu_bytes = 0;  // per GPU, after FAISS's scratch, the reserve and headroom
  int64_t vectors_per_shard = 0;
  int shards = 0;
  int gpus = 0;  // one shard per GPU
  int servers = 0;
  int64_t host_ram_bytes_per_server = 0;  // CPU copies of the shards a server holds
  bool host_ram_fits = true;
  int64_t shard_file_bytes = 0;  // one shard file
  int64_t disk_bytes = 0;        // all shard files of one generation
  int64_t input_bytes = 0;       // float32 input
  int64_t input_read_bytes = 0;  // every shard build reads the whole input
  int64_t ledger_bytes = 0;

  double cpu_build_seconds = 0;  // shard builds in parallel, CPU add (what probity does)
  double gpu_add_seconds = 0;    // FAISS GPU add at the reference rate (for comparison)
  std::vector<PlanSearchRow> search;

  std::vector<PlanFigure> figures;  // everything above, in print order, with its basis
};

absl::StatusOr<CapacityPlan> PlanCapacity(const PlanRequest& request);

// Text for people and JSON for programs (figures with their basis, search rows).
std::string FormatPlanText(const PlanRequest& request, const CapacityPlan& plan);
std::string FormatPlanJson(const PlanRequest& request, const CapacityPlan& plan);

// The measured rates the plan uses, exposed so that tests and docs name the same numbers.
namespace plan_measurements {
// FAISS GPU reference, IVF16384,PQ64, 512-d, H200: 95-99 bytes of GPU memory per vector; the
// plan uses 99 and treats what exceeds code + 8-byte id (27 bytes) as per-vector overhead.
inline constexpr double kGpuBytesPerVectorPq64 = 99;
inline constexpr double kGpuOverheadBytesPerVector = 99 - 64 - 8;
// FAISS GPU reference, H200: 0.3-0.4 M vectors/s added; the plan uses 0.3.
inline constexpr double kGpuAddVectorsPerSecond = 0.3e6;
// FAISS GPU reference, H200, IVF16384,PQ64, 512-d, batch 1024, 20 M vectors (bench/gpu's
// gallery): queries per second at nprobe 8, 16, 32, 64, 128.
inline constexpr int kReferenceNprobes[] = {8, 16, 32, 64, 128};
inline constexpr double kReferenceQps[] = {547e3, 385e3, 232e3, 134e3, 72e3};
inline constexpr double kReferenceVectors = 20e6;
inline constexpr double kReferenceNlist = 16384;
// Probity's shard build on the development machine (bench/RESULTS.md, "Shard builds"): a
// shard's own vectors added per CPU second, one thread, IVF1024,PQ16 at 128-d, 4 shards of
// 1 M (reading and checking the whole input included); the plan scales it by 128 / d.
inline constexpr double kCpuAddVectorsPerCoreSecond128d = 45000;
}  // namespace plan_measurements

}  // namespace probity::index
