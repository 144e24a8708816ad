// The GPU memory estimate, placement plan and options checks: pure functions of FAISS 1.7.3's
// GPU allocation rules, compiled in every build (no CUDA) so that CI tests them.

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "faiss_search.h"
#include "probity/index/gpu.h"

namespace probity::index {
namespace {

int64_t RoundUp(int64_t bytes, int64_t granularity) {
  if (granularity <= 1) return bytes;
  return (bytes + granularity - 1) / granularity * granularity;
}

// What one inverted list costs beyond its payload: codes padded to whole interleaved blocks, and
// each of its allocations (codes, and ids when they live on the GPU) rounded up to the
// allocation granularity.
int64_t ListRounding(int64_t vectors, int64_t code_size, int64_t interleave, bool ids_on_gpu) {
  if (vectors == 0) return 0;  // FAISS allocates nothing for an empty list
  const int64_t code_bytes = RoundUp(vectors, interleave) * code_size;
  int64_t extra = RoundUp(code_bytes, kGpuAllocationGranularity) - vectors * code_size;
  if (ids_on_gpu) {
    extra += RoundUp(vectors * 8, kGpuAllocationGranularity) - vectors * 8;
  }
  return extra;
}

std::string FormatBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", b / (1 << 30));
  if (bytes >= (int64_t{1} << 20)) return absl::StrFormat("%.1f MiB", b / (1 << 20));
  return absl::StrCat(bytes, " B");
}

}  // namespace

std::string GpuIdPlacementName(GpuIdPlacement placement) {
  return placement == GpuIdPlacement::kGpu ? "gpu" : "cpu";
}

absl::StatusOr<GpuIdPlacement> ParseGpuIdPlacement(const std::string& name) {
  if (name == "gpu") return GpuIdPlacement::kGpu;
  if (name == "cpu") return GpuIdPlacement::kCpu;
  return absl::InvalidArgumentError(
      absl::StrCat("gpu ids must be \"gpu\" or \"cpu\", not \"", name, "\""));
}

std::string GpuHostWaitName(GpuHostWait wait) {
  switch (wait) {
    case GpuHostWait::kAuto:
      return "auto";
    case GpuHostWait::kSpin:
      return "spin";
    case GpuHostWait::kYield:
      return "yield";
    case GpuHostWait::kBlock:
      return "block";
  }
  return "auto";
}

absl::StatusOr<GpuHostWait> ParseGpuHostWait(const std::string& name) {
  for (GpuHostWait wait : kGpuHostWaits) {
    if (name == GpuHostWaitName(wait)) return wait;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "gpu host_wait must be \"auto\", \"spin\", \"yield\" or \"block\", not \"", name, "\""));
}

absl::Status ValidateGpuOptions(const GpuOptions& options) {
  if (options.devices.empty()) return absl::InvalidArgumentError("gpu: no devices configured");
  std::set<int> seen;
  for (int device : options.devices) {
    if (device < 0) {
      return absl::InvalidArgumentError(absl::StrCat("gpu: device ", device, " is negative"));
    }
    if (!seen.insert(device).second) {
      return absl::InvalidArgumentError(absl::StrCat("gpu: device ", device, " is listed twice"));
    }
  }
  if (options.temp_memory_mb < -1) {
    return absl::InvalidArgumentError("gpu: temp_memory_mb must be -1 (FAISS's default) or >= 0");
  }
  if (options.copies_per_shard < 1 || options.copies_per_shard > kMaxGpuCopiesPerShard) {
    return absl::InvalidArgumentError(absl::StrCat("gpu: copies_per_shard must be 1 to ",
                                                   kMaxGpuCopiesPerShard, ", not ",
                                                   options.copies_per_shard));
  }
  return absl::OkStatus();
}

GpuMemoryEstimate EstimateShardGpuMemory(const GpuShardShape& shape, const GpuOptions& options) {
  GpuMemoryEstimate estimate;
  const int64_t n = shape.num_vectors;
  const int64_t dim = shape.dim;
  if (shape.kind == GpuShardShape::Kind::kFlat) {
    // GpuIndexFlat keeps float32 vectors and their norms; the id map stays on the host.
    estimate.codes = n * dim * 4;
    estimate.list_overhead = RoundUp(n * dim * 4, kGpuAllocationGranularity) - n * dim * 4 +
                             RoundUp(n * 4, kGpuAllocationGranularity);
    return estimate;
  }
  const bool ids_on_gpu = options.ids == GpuIdPlacement::kGpu;
  estimate.codes = n * shape.code_size;
  estimate.ids = ids_on_gpu ? n * 8 : 0;
  if (shape.list_sizes.empty()) {
    // Unknown distribution: every non-empty list may waste up to one granule per allocation.
    // Every non-empty list may waste up to one granule per allocation and almost a whole
    // interleaved block.
    const int64_t nonempty = std::min(n, shape.nlist);
    estimate.list_overhead =
        nonempty * (kGpuAllocationGranularity * (ids_on_gpu ? 2 : 1) +
                    (std::max<int64_t>(shape.interleave, 1) - 1) * shape.code_size);
  } else {
    for (int64_t size : shape.list_sizes) {
      estimate.list_overhead +=
          ListRounding(size, shape.code_size, std::max<int64_t>(shape.interleave, 1), ids_on_gpu);
    }
  }
  // Per-list device pointer arrays (codes, ids) and lengths.
  estimate.list_overhead += RoundUp(shape.nlist * (8 + 8 + 4), kGpuAllocationGranularity);
  // The coarse quantizer is a float32 GpuIndexFlat: centroids and their norms.
  estimate.coarse_centroids = RoundUp(shape.nlist * dim * 4, kGpuAllocationGranularity) +
                              RoundUp(shape.nlist * 4, kGpuAllocationGranularity);
  // GpuIndexIVFPQ keeps its codebooks twice (innermost-code and middle-code layouts).
  if (shape.pq_ksub > 0) {
    estimate.pq_tables = 2 * RoundUp(shape.pq_ksub * dim * 4, kGpuAllocationGranularity);
  }
  return estimate;
}

absl::StatusOr<GpuShardShape> GpuShardShapeOf(const faiss::Index& index) {
  GpuShardShape shape;
  const faiss::IndexIVF* ivf = internal::FindIvf(index);
  if (ivf == nullptr) {
    const faiss::Index* inner = &index;
    if (auto* id_map = dynamic_cast<const faiss::IndexIDMap*>(inner)) inner = id_map->index;
    if (dynamic_cast<const faiss::IndexFlat*>(inner) == nullptr) {
      return absl::UnimplementedError("only IVF-PQ, IVF-Flat, IVF-SQ and Flat shards go on GPUs");
    }
    shape.kind = GpuShardShape::Kind::kFlat;
    shape.dim = inner->d;
    shape.num_vectors = inner->ntotal;
    return shape;
  }
  const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf);
  const bool cloneable = ivfpq != nullptr || dynamic_cast<const faiss::IndexIVFFlat*>(ivf) ||
                         dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(ivf);
  if (!cloneable) {
    return absl::UnimplementedError(
        "FAISS 1.7.3's GPU module takes IVF-PQ, IVF-Flat and IVF-SQ only (not fast-scan lists)");
  }
  if (ivfpq != nullptr && ivfpq->pq.nbits != 8) {
    return absl::UnimplementedError(absl::StrCat(
        "FAISS 1.7.3's GPU IVF-PQ needs 8-bit codes; this shard has ", ivfpq->pq.nbits));
  }
  if (dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists) == nullptr) {
    return absl::UnimplementedError("only in-memory inverted lists can be cloned to a GPU");
  }
  shape.kind = GpuShardShape::Kind::kIvf;
  shape.dim = ivf->d;
  shape.num_vectors = ivf->ntotal;
  shape.nlist = static_cast<int64_t>(ivf->nlist);
  shape.code_size = static_cast<int64_t>(ivf->code_size);
  shape.pq_ksub = ivfpq != nullptr ? static_cast<int64_t>(ivfpq->pq.ksub) : 0;
  // GpuIndexIVFFlatConfig / GpuIndexIVFScalarQuantizerConfig default to interleavedLayout.
  shape.interleave = ivfpq != nullptr ? 1 : 32;
  shape.list_sizes.resize(ivf->nlist);
  for (size_t list = 0; list < ivf->nlist; ++list) {
    shape.list_sizes[list] = static_cast<int64_t>(ivf->invlists->list_size(list));
  }
  return shape;
}

int64_t GpuTempMemoryBytes(const GpuOptions& options, int64_t device_total_bytes) {
  constexpr int64_t kGiB = int64_t{1} << 30;
  const int64_t requested = options.temp_memory_mb < 0 ? std::numeric_limits<int64_t>::max()
                                                       : options.temp_memory_mb << 20;
  int64_t cap = 3 * kGiB / 2;
  if (device_total_bytes <= 4 * kGiB) {
    cap = kGiB / 2;
  } else if (device_total_bytes <= 8 * kGiB) {
    cap = kGiB;
  }
  return std::min(requested, cap);
}

std::vector<int> PlanGpuPlacement(const std::vector<int>& shards, const std::vector<int>& devices) {
  std::vector<int> placement;
  if (devices.empty()) return placement;
  placement.reserve(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) placement.push_back(devices[i % devices.size()]);
  return placement;
}

GpuDeviceNeed NeedOnDevice(int device, const std::vector<GpuMemoryEstimate>& estimates,
                           const GpuOptions& options, int64_t free_bytes, int64_t total_bytes,
                           bool in_use) {
  GpuDeviceNeed need;
  need.device = device;
  need.num_shards = static_cast<int>(estimates.size());
  need.copies_per_shard = options.copies_per_shard;
  need.free_bytes = free_bytes;
  for (const GpuMemoryEstimate& estimate : estimates) {
    need.shard_bytes += estimate.total() * options.copies_per_shard;
  }
  if (!in_use) {
    need.temp_bytes = GpuTempMemoryBytes(options, total_bytes) * options.copies_per_shard;
    need.reserve_bytes = kGpuReservePerDevice;
  }
  return need;
}

absl::Status CheckGpuMemory(const std::vector<GpuDeviceNeed>& needs) {
  bool short_of_memory = false;
  std::vector<std::string> lines;
  for (const GpuDeviceNeed& need : needs) {
    const bool fits = need.needed() <= need.free_bytes;
    short_of_memory |= !fits;
    lines.push_back(absl::StrCat(
        "GPU ", need.device, fits ? "" : " (short)", ": needs ", FormatBytes(need.needed()), " (",
        need.num_shards, " shard(s)",
        need.copies_per_shard > 1 ? absl::StrCat(" x ", need.copies_per_shard, " copies") : "", " ",
        FormatBytes(need.shard_bytes), " + FAISS temporary memory ", FormatBytes(need.temp_bytes),
        " + reserve ", FormatBytes(need.reserve_bytes), "), ", FormatBytes(need.free_bytes),
        " free"));
  }
  if (!short_of_memory) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "not enough GPU memory, nothing was loaded onto the GPUs: ", absl::StrJoin(lines, "; ")));
}

}  // namespace probity::index
