#include "probity/index/capacity_plan.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "probity/index/gpu.h"

namespace probity::index {
namespace {

namespace m = plan_measurements;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// FAISS GPU: each non-empty list's codes and ids are separate allocations rounded up to 512
// bytes (half of that wasted on average for each) plus 20 bytes of pointers and lengths
// (index/README.md, "Memory check").
constexpr int64_t kGpuListOverheadBytes = 512 + 20;
// FAISS CPU ArrayInvertedLists: two std::vector headers per list.
constexpr int64_t kHostListOverheadBytes = 48;
// A shard file stores each list's size (8 bytes) besides its codes and ids.
constexpr int64_t kFileListOverheadBytes = 8;
// Ledger: each entry is a record (9-byte header) plus its leaf hash and, over all tree levels,
// about one more 32-byte hash (server/ledger/README.md).
constexpr int64_t kLedgerOverheadBytesPerEntry = 9 + 2 * 32;

struct ParsedSpec {
  int64_t nlist = 0;
  int hnsw_m = 0;
  int64_t code_size = 0;
  bool pq = false;
};

absl::StatusOr<ParsedSpec> ParseSpec(const std::string& factory, int dim) {
  const std::vector<std::string> parts = absl::StrSplit(factory, ',');
  const auto refuse = [&factory] {
    return absl::InvalidArgumentError(absl::StrCat(
        "probity plan understands IVF<nlist>[_HNSW<M>],PQ<m>[x8] and IVF<nlist>[_HNSW<M>],Flat; "
        "got '",
        factory, "'"));
  };
  if (parts.size() != 2) return refuse();
  ParsedSpec spec;
  absl::string_view coarse = parts[0];
  if (!absl::ConsumePrefix(&coarse, "IVF")) return refuse();
  const std::vector<std::string> coarse_parts = absl::StrSplit(coarse, "_HNSW");
  if (coarse_parts.empty() || coarse_parts.size() > 2 ||
      !absl::SimpleAtoi(coarse_parts[0], &spec.nlist) || spec.nlist <= 0) {
    return refuse();
  }
  if (coarse_parts.size() == 2 &&
      (!absl::SimpleAtoi(coarse_parts[1], &spec.hnsw_m) || spec.hnsw_m <= 1)) {
    return refuse();
  }
  absl::string_view fine = parts[1];
  if (fine == "Flat") {
    spec.code_size = int64_t{4} * dim;
  } else if (absl::ConsumePrefix(&fine, "PQ")) {
    absl::ConsumeSuffix(&fine, "x8");
    int pq_m = 0;
    if (!absl::SimpleAtoi(fine, &pq_m) || pq_m <= 0 || dim % pq_m != 0) return refuse();
    spec.code_size = pq_m;
    spec.pq = true;
  } else {
    return refuse();
  }
  return spec;
}

std::string Bytes(double bytes) {
  if (bytes >= 1e12) return absl::StrFormat("%.2f TB", bytes / 1e12);
  if (bytes >= 1e9) return absl::StrFormat("%.1f GB", bytes / 1e9);
  if (bytes >= 1e6) return absl::StrFormat("%.1f MB", bytes / 1e6);
  return absl::StrFormat("%.0f bytes", bytes);
}

std::string Value(const PlanFigure& figure) {
  if (figure.unit == "bytes") return Bytes(figure.value);
  if (figure.unit == "seconds") {
    if (figure.value >= 3600) return absl::StrFormat("%.1f h", figure.value / 3600);
    if (figure.value >= 60) return absl::StrFormat("%.1f min", figure.value / 60);
    return absl::StrFormat("%.0f s", figure.value);
  }
  if (figure.value == std::floor(figure.value) && std::fabs(figure.value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(figure.value), figure.unit.empty() ? "" : " ",
                        figure.unit);
  }
  return absl::StrFormat("%.1f %s", figure.value, figure.unit);
}

}  // namespace

absl::StatusOr<CapacityPlan> PlanCapacity(const PlanRequest& request) {
  if (request.vectors <= 0 || request.dim <= 0) {
    return absl::InvalidArgumentError("vectors and dimension must be positive");
  }
  if (request.gpu_memory_gib <= 0 || request.gpus_per_server <= 0 ||
      request.host_ram_gib_per_server <= 0 || request.build_cores_per_shard <= 0) {
    return absl::InvalidArgumentError(
        "GPU memory, GPUs per server, host RAM and build cores must be positive");
  }
  if (request.gpu_headroom < 0 || request.gpu_headroom >= 1) {
    return absl::InvalidArgumentError("GPU headroom must be in [0, 1)");
  }
  if (request.gpu_copies_per_shard < 1 || request.gpu_copies_per_shard > kMaxGpuCopiesPerShard) {
    return absl::InvalidArgumentError(absl::StrCat("GPU copies per shard must be 1 to ",
                                                   kMaxGpuCopiesPerShard, ", not ",
                                                   request.gpu_copies_per_shard));
  }
  absl::StatusOr<ParsedSpec> spec = ParseSpec(request.factory, request.dim);
  if (!spec.ok()) return spec.status();
  const double d = request.dim;
  CapacityPlan plan;
  plan.nlist = spec->nlist;
  plan.hnsw_m = spec->hnsw_m;
  plan.code_size = spec->code_size;

  // Repeated by every shard.
  plan.coarse_quantizer_bytes = spec->nlist * request.dim * 4;
  const int64_t norms = spec->nlist * 4;
  const int64_t codebooks = spec->pq ? int64_t{256} * request.dim * 4 : 0;
  // FAISS's HNSW: about 2M + 1 neighbour slots of 4 bytes per node, plus level and offset.
  const int64_t hnsw =
      spec->hnsw_m > 0 ? spec->nlist * ((2 * int64_t{spec->hnsw_m} + 1) * 4 + 12) : 0;
  plan.gpu_fixed_bytes_per_shard =
      plan.coarse_quantizer_bytes + norms + 2 * codebooks + spec->nlist * kGpuListOverheadBytes;
  plan.host_fixed_bytes_per_shard =
      plan.coarse_quantizer_bytes + hnsw + codebooks + spec->nlist * kHostListOverheadBytes;
  const int64_t file_fixed =
      plan.coarse_quantizer_bytes + hnsw + codebooks + spec->nlist * kFileListOverheadBytes;

  plan.gpu_bytes_per_vector = spec->code_size + 8 + m::kGpuOverheadBytesPerVector;
  plan.host_bytes_per_vector = spec->code_size + 8;
  plan.disk_bytes_per_vector = spec->code_size + 8;

  // As the server's memory check (NeedOnDevice) counts a GPU: every copy holds the whole shard
  // and has FAISS's scratch of its own; the reserve is once per GPU.
  GpuOptions gpu_options;
  gpu_options.copies_per_shard = request.gpu_copies_per_shard;
  const int copies = request.gpu_copies_per_shard;
  const int64_t gpu_total = static_cast<int64_t>(request.gpu_memory_gib * kGiB);
  const int64_t scratch = GpuTempMemoryBytes(gpu_options, gpu_total) * copies;
  plan.usable_gpu_bytes = static_cast<int64_t>((gpu_total - scratch - kGpuReservePerDevice) *
                                               (1 - request.gpu_headroom) / copies) -
                          plan.gpu_fixed_bytes_per_shard;
  if (plan.usable_gpu_bytes <= plan.gpu_bytes_per_vector) {
    if (copies == 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "a %.0f GiB GPU cannot hold one shard of %s at %d dimensions: the coarse quantizer, "
          "codebooks and list overhead alone take %s",
          request.gpu_memory_gib, request.factory, request.dim,
          Bytes(plan.gpu_fixed_bytes_per_shard)));
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "a %.0f GiB GPU cannot hold %d copies of one shard of %s at %d dimensions: each copy "
        "takes %s of FAISS scratch and %s of coarse quantizer, codebooks and list overhead "
        "before any vector",
        request.gpu_memory_gib, copies, request.factory, request.dim, Bytes(scratch / copies),
        Bytes(plan.gpu_fixed_bytes_per_shard)));
  }
  const int64_t max_per_shard =
      static_cast<int64_t>(plan.usable_gpu_bytes / plan.gpu_bytes_per_vector);
  plan.shards = static_cast<int>((request.vectors + max_per_shard - 1) / max_per_shard);
  plan.vectors_per_shard = (request.vectors + plan.shards - 1) / plan.shards;
  plan.gpus = plan.shards;
  plan.servers = (plan.gpus + request.gpus_per_server - 1) / request.gpus_per_server;
  const int shards_per_server = std::min(plan.shards, request.gpus_per_server);
  plan.host_ram_bytes_per_server =
      shards_per_server * (plan.host_fixed_bytes_per_shard +
                           static_cast<int64_t>(plan.host_bytes_per_vector *
                                                static_cast<double>(plan.vectors_per_shard)));
  plan.host_ram_fits = plan.host_ram_bytes_per_server <= request.host_ram_gib_per_server * kGiB;
  plan.shard_file_bytes =
      file_fixed + static_cast<int64_t>(plan.disk_bytes_per_vector * plan.vectors_per_shard);
  plan.disk_bytes = plan.shard_file_bytes * plan.shards;
  plan.input_bytes = request.vectors * request.dim * 4;
  plan.input_read_bytes = plan.input_bytes * plan.shards;
  plan.ledger_bytes =
      request.ledger_searches * (request.ledger_entry_bytes + kLedgerOverheadBytesPerEntry);

  const double cpu_rate =
      m::kCpuAddVectorsPerCoreSecond128d * (128.0 / d) * request.build_cores_per_shard;
  plan.cpu_build_seconds = plan.vectors_per_shard / cpu_rate;
  plan.gpu_add_seconds = plan.vectors_per_shard / m::kGpuAddVectorsPerSecond;

  const double reference_list = m::kReferenceVectors / m::kReferenceNlist;
  const double list = static_cast<double>(plan.vectors_per_shard) / spec->nlist;
  for (int nprobe : request.nprobes) {
    const auto* at =
        std::find(std::begin(m::kReferenceNprobes), std::end(m::kReferenceNprobes), nprobe);
    if (at == std::end(m::kReferenceNprobes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nprobe ", nprobe, " has no reference measurement (measured: 8, 16, 32, 64, 128)"));
    }
    const double reference_qps = m::kReferenceQps[at - std::begin(m::kReferenceNprobes)];
    PlanSearchRow row;
    row.nprobe = nprobe;
    row.codes_per_query_per_shard = nprobe * list;
    // Scan cost follows the codes scanned; shorter lists than the reference's are not credited
    // beyond the reference rate (fixed per-query costs).
    row.queries_per_second = reference_qps * std::min(1.0, reference_list / list);
    plan.search.push_back(row);
  }

  const std::string gpu_bpv_basis = absl::StrFormat(
      "code %d + id 8 + %.0f overhead: FAISS GPU reference measured on an H200, IVF16384,PQ64 "
      "512-d, 95-99 bytes/vector (bench/RESULTS.md)",
      spec->code_size, m::kGpuOverheadBytesPerVector);
  const std::string one_per_gpu =
      copies == 1
          ? "one shard per GPU"
          : absl::StrFormat("one shard per GPU, %d copies of it (gpu.copies_per_shard)", copies);
  plan.figures = {
      {"coarse quantizer in every shard", static_cast<double>(plan.coarse_quantizer_bytes), "bytes",
       absl::StrFormat("nlist %d x d %d x 4 bytes, repeated by every shard file and GPU",
                       spec->nlist, request.dim)},
      {"GPU bytes per vector", plan.gpu_bytes_per_vector, "bytes/vector", gpu_bpv_basis},
      {"GPU fixed per shard", static_cast<double>(plan.gpu_fixed_bytes_per_shard), "bytes",
       "coarse quantizer + norms + PQ codebooks twice + 532 bytes per list (index/README.md)"},
      {"usable GPU memory per shard", static_cast<double>(plan.usable_gpu_bytes), "bytes",
       copies == 1
           ? absl::StrFormat("%.0f GiB - FAISS scratch - 256 MiB reserve, %.0f%% headroom, - fixed",
                             request.gpu_memory_gib, request.gpu_headroom * 100)
           : absl::StrFormat("(%.0f GiB - FAISS scratch x %d copies - 256 MiB reserve, %.0f%% "
                             "headroom) / %d copies, - fixed",
                             request.gpu_memory_gib, copies, request.gpu_headroom * 100, copies)},
      {"vectors per shard", static_cast<double>(plan.vectors_per_shard), "",
       "N / shards, at most usable / GPU bytes per vector"},
      {"shards", static_cast<double>(plan.shards), "", one_per_gpu},
      {"GPUs", static_cast<double>(plan.gpus), "", absl::StrCat(one_per_gpu, ", no replicas")},
      {"servers", static_cast<double>(plan.servers), "",
       absl::StrCat(request.gpus_per_server, " GPUs per server")},
      {"host RAM per server", static_cast<double>(plan.host_ram_bytes_per_server), "bytes",
       absl::StrFormat("CPU copy of each held shard: (code + 8 id) per vector + quantizer, HNSW "
                       "graph, codebooks; %s the %.0f GiB given",
                       plan.host_ram_fits ? "fits" : "DOES NOT FIT",
                       request.host_ram_gib_per_server)},
      {"shard file", static_cast<double>(plan.shard_file_bytes), "bytes",
       "(code + 8 id) per vector, as measured on disk (bench/RESULTS.md, shard builds) + "
       "quantizer, HNSW graph, codebooks"},
      {"disk for one generation", static_cast<double>(plan.disk_bytes), "bytes",
       "shards x shard file"},
      {"ledger", static_cast<double>(plan.ledger_bytes), "bytes",
       absl::StrFormat("%d searches x (%d bytes per entry, assumed, + 73 bytes record header and "
                       "tree hashes)",
                       request.ledger_searches, request.ledger_entry_bytes)},
      {"input read by all shard builds", static_cast<double>(plan.input_read_bytes), "bytes",
       "every shard build streams the whole float32 input and keeps its own ids"},
      {"shard build time (CPU, shards in parallel)", plan.cpu_build_seconds, "seconds",
       absl::StrFormat(
           "%.0f vectors/s per core at 128-d measured by Probity's shard build "
           "(bench/RESULTS.md; 4 shards, input in the page cache), x 128/d, x %d cores; reading "
           "the input from storage not included",
           m::kCpuAddVectorsPerCoreSecond128d, request.build_cores_per_shard)},
      {"GPU add time per shard (FAISS, for comparison)", plan.gpu_add_seconds, "seconds",
       "0.3 M vectors/s: FAISS GPU reference measured on an H200 (0.3-0.4 M/s); probity "
       "build-shard adds on the CPU"},
  };
  return plan;
}

std::string FormatPlanText(const PlanRequest& request, const CapacityPlan& plan) {
  std::string text = absl::StrFormat(
      "plan: %d vectors x %d dims, %s, %.0f GiB GPUs, %d GPUs and %.0f GiB RAM per server%s\n\n",
      request.vectors, request.dim, request.factory, request.gpu_memory_gib,
      request.gpus_per_server, request.host_ram_gib_per_server,
      request.gpu_copies_per_shard == 1
          ? ""
          : absl::StrFormat(", %d GPU copies of each shard", request.gpu_copies_per_shard));
  for (const PlanFigure& figure : plan.figures) {
    absl::StrAppendFormat(&text, "%-46s %14s   %s\n", figure.name, Value(figure), figure.basis);
  }
  absl::StrAppend(&text,
                  "\nsearch, batch 1024, every query visits every shard (FAISS GPU reference "
                  "measured on an H200, IVF16384,PQ64 512-d, 20 M vectors; scaled by codes "
                  "scanned; coarse quantizer search not included",
                  request.gpu_copies_per_shard == 1
                      ? ""
                      : "; one copy of each shard: what more copies add is not measured",
                  "):\n");
  absl::StrAppendFormat(&text, "%8s %22s %16s\n", "nprobe", "codes/query/shard", "queries/s");
  for (const PlanSearchRow& row : plan.search) {
    absl::StrAppendFormat(&text, "%8d %22.0f %16.0f\n", row.nprobe, row.codes_per_query_per_shard,
                          row.queries_per_second);
  }
  return text;
}

std::string FormatPlanJson(const PlanRequest& request, const CapacityPlan& plan) {
  nlohmann::json figures = nlohmann::json::array();
  for (const PlanFigure& figure : plan.figures) {
    figures.push_back({{"name", figure.name},
                       {"value", figure.value},
                       {"unit", figure.unit},
                       {"basis", figure.basis}});
  }
  nlohmann::json search = nlohmann::json::array();
  for (const PlanSearchRow& row : plan.search) {
    search.push_back({{"nprobe", row.nprobe},
                      {"codes_per_query_per_shard", row.codes_per_query_per_shard},
                      {"queries_per_second", row.queries_per_second}});
  }
  const nlohmann::json doc = {{"request",
                               {{"vectors", request.vectors},
                                {"dim", request.dim},
                                {"spec", request.factory},
                                {"gpu_memory_gib", request.gpu_memory_gib},
                                {"gpus_per_server", request.gpus_per_server},
                                {"host_ram_gib_per_server", request.host_ram_gib_per_server},
                                {"gpu_copies_per_shard", request.gpu_copies_per_shard}}},
                              {"shards", plan.shards},
                              {"gpus", plan.gpus},
                              {"servers", plan.servers},
                              {"vectors_per_shard", plan.vectors_per_shard},
                              {"host_ram_bytes_per_server", plan.host_ram_bytes_per_server},
                              {"host_ram_fits", plan.host_ram_fits},
                              {"disk_bytes", plan.disk_bytes},
                              {"ledger_bytes", plan.ledger_bytes},
                              {"cpu_build_seconds", plan.cpu_build_seconds},
                              {"figures", figures},
                              {"search", search}};
  return doc.dump(2) + "\n";
}

}  // namespace probity::index
