// The GPU benchmark: one program that measures, on one index built in the same run,
//   1. Probity's GPU shard against FAISS GPU called in-process (batch x nprobe grid),
//   2. GPU against all CPU cores of the machine, with identity hit@10 of both,
//   3. the embedded service end to end (warrant check, search, ledger append; fsync on and off)
//      at 1..512 concurrent single-query clients against FAISS GPU in-process batch-1024,
// and writes every result as a ratio against its reference into DIR/results.md, ready to paste
// into bench/RESULTS.md. The gallery (20 M x 512 by default, 41 GB as floats) is generated and
// added chunk by chunk and is never held in memory.
//
// Without a usable GPU (a CPU-only machine, or --cpu-only) it runs the CPU parts only, with
// FAISS CPU in-process as the reference: that is how `--smoke` checks the program on a small
// gallery where no GPU is available.
#include <faiss/IndexIVF.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/canned_search_server.h"
#include "gpu_reference.h"
#include "probity/common/abseil_deadlock_detection.h"
#include "probity/common/owner_only_file.h"
#include "probity/index/embedding_io.h"
#include "probity/index/generation.h"
#include "probity/index/gpu.h"
#include "probity/index/sharded_index.h"
#include "probity/index/synthetic.h"
#include "probity/ledger/checkpoint.h"
#include "probity/service/latency_histogram.h"
#include "probity/service/server.h"
#include "probity/warrant/issue.h"
#include "service_load.h"

namespace probity::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kK = 10;
constexpr char kCollection[] = "gpu-bench";
// The service target's concurrent clients (fsync off: >= 0.25x FAISS batch 1024, p99 < 5 ms).
constexpr int kTargetClients = 128;

struct Options {
  std::filesystem::path out;
  bool smoke = false;
  bool cpu_only = false;
  int64_t vectors = 20'000'000;
  int images_per_identity = 10;
  int dim = 512;
  std::string spec = "IVF16384,PQ64";
  int64_t train_rows = 655'360;  // 40 per coarse centroid
  int64_t queries = 10'240;
  int64_t chunk_identities = 100'000;  // 1 M vectors, 2 GB of floats per chunk; two in memory
  std::vector<int> nprobes = {8, 16, 32, 64, 128};
  std::vector<int> batches = {1, 16, 64, 256, 1024};
  std::vector<int> clients = {1, 16, 128, 512};
  double seconds_per_point = 1.0;
  double service_seconds = 4.0;
  int service_nprobe = 32;
  int cpu_threads = 0;             // 0: every core
  int64_t cpu_qps_queries = 2048;  // queries per CPU throughput point
  int device = 0;
  // The service's dynamic batching (see the `batching` section of the config).
  bool batching = true;
  int batch_max_size = 256;
  int batch_max_wait_us = 200;
  // Also the service at the target's clients with Abseil's Mutex deadlock detection on, as the
  // Abseil Debian ships has it unless a program turns it off (the probity binary does).
  bool compare_abseil_deadlock_detection = false;
  // search_load, for clients in another process (empty: beside this program or in the build
  // tree, if there).
  std::filesystem::path load_program;
  int load_processes = 1;  // > 1: also the 128 clients split over that many other processes
  int service_completion_queues = 0;  // the service's grpc_completion_queues (0: gRPC's one)
  // Also the service with this dynamic-batching wait instead of batch_max_wait_us.
  std::optional<int> compare_batch_wait_us;
  // Also the service with the batcher handing the shard to the next call before waking the
  // finished call's requests (config batching.next_call_first).
  bool compare_next_call_first = false;
  // Also the service with each batched search waiting on its own signal, in both hand-over
  // orders (config batching.direct_wakeups).
  bool compare_direct_wakeups = false;
  // The service's GPU copies of each shard (config gpu.copies_per_shard), and the batcher's calls
  // of one shard at once with them.
  int gpu_copies_per_shard = 1;
  // Also, for each N: N GPU copies of the shard searched by N threads at once against one copy
  // searched by one thread, at small batches; and the service with N copies.
  std::vector<int> compare_gpu_copies;
  // How the service's threads wait for the GPU (config gpu.host_wait).
  index::GpuHostWait gpu_host_wait = index::GpuHostWait::kAuto;
  // Also the service with each of these, alone and with each of compare_gpu_copies; run last,
  // because CUDA keeps a device's scheduling flags for the rest of the process.
  std::vector<index::GpuHostWait> compare_gpu_host_wait;
};

void Log(const std::string& line) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::gmtime(&now));
  std::fprintf(stderr, "[%s] %s\n", stamp, line.c_str());
}

[[noreturn]] void Fail(const std::string& what, const absl::Status& status) {
  Log(absl::StrCat("FAILED: ", what, ": ", status.ToString()));
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(what, value.status());
  return *std::move(value);
}

void Must(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Fail(what, status);
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Calls `search(first_row, batch)` over consecutive batches of the query set (wrapping) for at
// least `seconds` and at least two batches after one warm-up batch; returns queries/second.
double MeasureQps(int64_t num_queries, int64_t batch, double seconds,
                  const std::function<void(int64_t, int64_t)>& search) {
  batch = std::min(batch, num_queries);
  int64_t row = 0;
  auto next = [&] {
    if (row + batch > num_queries) row = 0;
    search(row, batch);
    row += batch;
  };
  next();
  int64_t done = 0;
  const auto begin = Clock::now();
  while (done < 2 * batch || Seconds(begin) < seconds) {
    next();
    done += batch;
  }
  return static_cast<double>(done) / Seconds(begin);
}

// `threads` threads each calling `search(first_row, batch)` over consecutive batches for at
// least `seconds` (after one warm-up call each); returns the queries per second of all of them.
double MeasureConcurrentQps(int threads, int64_t num_queries, int64_t batch, double seconds,
                            const std::function<void(int64_t, int64_t)>& search) {
  batch = std::min(batch, num_queries);
  for (int t = 0; t < threads; ++t) search(0, batch);  // serial: each GPU copy once
  std::atomic<int64_t> done{0};
  const auto begin = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      int64_t row = (static_cast<int64_t>(t) * 7919 * batch) % num_queries;
      while (Seconds(begin) < seconds) {
        if (row + batch > num_queries) row = 0;
        search(row, batch);
        row += batch;
        done += batch;
      }
    });
  }
  for (std::thread& thread : pool) thread.join();
  return static_cast<double>(done.load()) / Seconds(begin);
}

// Fraction of queries with at least one of their top-k hits from the query's own identity.
double IdentityHitRate(const std::vector<index::HitList>& hits,
                       const std::vector<int64_t>& query_labels, int images_per_identity) {
  int64_t found = 0;
  for (size_t q = 0; q < hits.size(); ++q) {
    for (const index::Hit& hit : hits[q]) {
      if (hit.id >= 0 && hit.id / images_per_identity == query_labels[q]) {
        ++found;
        break;
      }
    }
  }
  return hits.empty() ? 0 : static_cast<double>(found) / static_cast<double>(hits.size());
}

struct Dataset {
  index::SyntheticOptions synthetic;
  std::vector<float> queries;
  std::vector<int64_t> query_labels;
};

index::SyntheticOptions SyntheticFor(const Options& options) {
  index::SyntheticOptions synthetic;
  synthetic.identities = options.vectors / options.images_per_identity;
  synthetic.images_per_identity = options.images_per_identity;
  synthetic.num_queries = options.queries;
  synthetic.dim = options.dim;
  synthetic.ground_truth_k = 1;  // unused: chunks carry no ground truth
  synthetic.seed = 20251126;
  return synthetic;
}

// Streams the gallery through `add(chunk)` and keeps the held-out queries. The next chunk is
// generated on a thread of its own while `add` takes the current one, so two chunks are in
// memory at a time: on a GPU the add leaves the CPU cores idle, and generating a million 512-d
// vectors took as long as adding them (3.0-3.6 s against 2.1-3.4 s on an H200 host), so a build
// that did one after the other took their sum, most of a GPU run's device time.
void ForEachChunk(const Options& options, Dataset& data,
                  const std::function<void(const index::SyntheticChunk&)>& add) {
  const int64_t identities = data.synthetic.identities;
  struct Generated {
    absl::StatusOr<index::SyntheticChunk> chunk;
    double seconds = 0;
  };
  auto generate = [&options, synthetic = data.synthetic, identities](int64_t first) {
    const auto begin = Clock::now();
    const int64_t count = std::min(options.chunk_identities, identities - first);
    Generated generated{index::GenerateSyntheticIdentities(synthetic, first, count), 0};
    generated.seconds = Seconds(begin);
    return generated;
  };
  std::future<Generated> next = std::async(std::launch::async, generate, int64_t{0});
  for (int64_t first = 0; first < identities; first += options.chunk_identities) {
    const auto wait_begin = Clock::now();
    Generated generated = next.get();
    const double waited = Seconds(wait_begin);
    index::SyntheticChunk chunk = Must(std::move(generated.chunk), "generate a chunk");
    if (const int64_t following = first + options.chunk_identities; following < identities) {
      next = std::async(std::launch::async, generate, following);
    }
    const auto add_begin = Clock::now();
    add(chunk);
    const double added = Seconds(add_begin);
    data.queries.insert(data.queries.end(), chunk.queries.begin(), chunk.queries.end());
    data.query_labels.insert(data.query_labels.end(), chunk.query_labels.begin(),
                             chunk.query_labels.end());
    Log(
        absl::StrFormat("  vectors %d..%d: generated in %.1f s (%.1f s of it waited for), added "
                        "in %.1f s",
                        chunk.first_gallery_id,
                        chunk.first_gallery_id + static_cast<int64_t>(chunk.gallery_labels.size()),
                        generated.seconds, waited, added));
  }
}

std::vector<int64_t> IdsOf(const index::SyntheticChunk& chunk) {
  std::vector<int64_t> ids(chunk.gallery_labels.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = chunk.first_gallery_id + static_cast<int64_t>(i);
  return ids;
}

// The training sample: the first train_rows gallery vectors (identities are random, so the
// first ones are as good a sample as any).
std::vector<float> TrainingSample(const Options& options, const Dataset& data) {
  const int64_t identities =
      std::min(data.synthetic.identities, (options.train_rows + options.images_per_identity - 1) /
                                              options.images_per_identity);
  index::SyntheticChunk chunk = Must(
      index::GenerateSyntheticIdentities(data.synthetic, 0, identities), "generate the sample");
  chunk.gallery.resize(std::min<size_t>(chunk.gallery.size(), options.train_rows * options.dim));
  return std::move(chunk.gallery);
}

// CPU build: Probity's own Train and Add (used where no GPU is available).
std::unique_ptr<index::ShardedIndex> BuildOnCpu(const Options& options, Dataset& data,
                                                const index::CollectionSpec& spec) {
  auto built =
      Must(index::ShardedIndex::Train(spec, TrainingSample(options, data), 1), "train on the CPU");
  ForEachChunk(options, data, [&](const index::SyntheticChunk& chunk) {
    Must(built->Add(chunk.gallery, IdsOf(chunk)), "add on the CPU");
  });
  return built;
}

struct Row {
  std::vector<std::string> cells;
};

std::string Table(const std::vector<std::string>& header, const std::vector<Row>& rows) {
  std::ostringstream out;
  out << "|";
  for (const auto& h : header) out << " " << h << " |";
  out << "\n|";
  for (size_t i = 0; i < header.size(); ++i) out << "---|";
  out << "\n";
  for (const auto& row : rows) {
    out << "|";
    for (const auto& cell : row.cells) out << " " << cell << " |";
    out << "\n";
  }
  return out.str();
}

std::string Fmt(double value, int decimals = 0) { return absl::StrFormat("%.*f", decimals, value); }

std::string Verdict(bool met) { return met ? "met" : "**not met**"; }

// How the load's clients run: a thread each in this process, on gRPC's callback API in this
// process, or a thread each in another process or in several (search_load).
enum class ClientKind { kThreads, kCallback, kOtherProcess, kOtherProcesses };

// "128", "128 callback", "128 other process" or "128 in 4 other processes".
std::string ClientsLabel(int clients, ClientKind kind, int load_processes) {
  switch (kind) {
    case ClientKind::kCallback:
      return absl::StrCat(clients, " callback");
    case ClientKind::kOtherProcess:
      return absl::StrCat(clients, " other process");
    case ClientKind::kOtherProcesses:
      return absl::StrCat(clients, " in ", load_processes, " other processes");
    case ClientKind::kThreads:
      break;
  }
  return std::to_string(clients);
}

// The target's verdict for one kind of client, or "not measured".
std::string TargetLine(const std::map<ClientKind, std::string>& lines, ClientKind kind) {
  const auto found = lines.find(kind);
  return found == lines.end() ? "not measured" : found->second;
}

// search_load beside this program (the GPU bundle's bin/) or in the build tree, or empty.
std::filesystem::path FindLoadProgram() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return {};
  for (const std::filesystem::path& candidate :
       {self.parent_path() / "search_load",
        self.parent_path().parent_path() / "server" / "search_load"}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// What placing the shard took from the GPU's free memory against Probity's estimate of it
// (which the load-time memory check uses), per stored vector.
std::string GpuMemoryLine(int64_t measured, const index::GpuMemoryEstimate& estimate,
                          int64_t scratch, int64_t vectors) {
  const double per_vector = static_cast<double>(vectors);
  return absl::StrFormat(
      "GPU memory of the placed shard: %.2f GiB from cudaMemGetInfo's free memory (%.1f bytes "
      "per vector, FAISS's scratch included); Probity's estimate: %.2f GiB of shard (%.1f "
      "bytes per vector: codes %.1f, ids %.1f, lists %.1f, centroids and codebooks %.1f) plus "
      "%.2f GiB of scratch.",
      static_cast<double>(measured) / (1 << 30), static_cast<double>(measured) / per_vector,
      static_cast<double>(estimate.total()) / (1 << 30),
      static_cast<double>(estimate.total()) / per_vector,
      static_cast<double>(estimate.codes) / per_vector,
      static_cast<double>(estimate.ids) / per_vector,
      static_cast<double>(estimate.list_overhead) / per_vector,
      static_cast<double>(estimate.coarse_centroids + estimate.pq_tables) / per_vector,
      static_cast<double>(scratch) / (1 << 30));
}

// The service's gRPC completion queues and the polling engine gRPC was told to use
// (GRPC_POLL_STRATEGY; gRPC's default on Linux is epoll1).
std::string GrpcSetup(const Options& options) {
  const char* strategy = std::getenv("GRPC_POLL_STRATEGY");
  return absl::StrFormat(
      "the service's gRPC completion queues: %s; gRPC polling engine: %s",
      options.service_completion_queues > 0 ? std::to_string(options.service_completion_queues)
                                            : "gRPC's one",
      strategy != nullptr && *strategy != '\0' ? absl::StrCat(strategy, " (GRPC_POLL_STRATEGY)")
                                               : "gRPC's default (epoll1)");
}

struct ServiceWorld {
  std::string token;
};

// Issuer key, JWKS, ledger signing key and one long warrant for the benchmark's collection.
ServiceWorld MakeCredentials(const std::filesystem::path& dir) {
  auto issuer = Must(warrant::Ed25519PrivateKey::Generate(), "issuer key");
  const std::string jwk = Must(warrant::PublicJwk(issuer, "k1", "bench-issuer"), "public JWK");
  std::ofstream(dir / "jwks.json") << Must(warrant::AppendToJwks("", jwk), "JWKS");
  Must(ledger::GenerateSigningKey(dir / "ledger-key.pem"), "ledger signing key");
  warrant::Claims claims;
  claims.iss = "bench-issuer";
  claims.sub = "bench";
  claims.aud = "bench";
  claims.jti = Must(warrant::RandomJti(), "jti");
  claims.iat = claims.nbf = std::time(nullptr) - 10;
  claims.exp = std::time(nullptr) + 6 * 3600;
  claims.case_number = "BENCH";
  claims.purpose = "GPU benchmark";
  claims.collections = {kCollection};
  claims.max_queries = int64_t{1} << 40;
  claims.max_k = 100;
  return {Must(warrant::IssueToken(claims, issuer, "k1"), "warrant")};
}

// The service's GPU and batching settings for this run.
void ConfigureServiceForBench(service::ServerConfig& config, const Options& options, bool use_gpu) {
  config.batching.enabled = options.batching;
  config.batching.max_batch_queries = options.batch_max_size;
  config.batching.max_wait_us = options.batch_max_wait_us;
  config.grpc_completion_queues = options.service_completion_queues;
  if (use_gpu) {
    // The same placement as the benchmark's own GPU shard: index::GpuOptions' defaults, with
    // --gpu-copies-per-shard copies.
    index::GpuOptions gpu;
    gpu.devices = {options.device};
    gpu.copies_per_shard = options.gpu_copies_per_shard;
    gpu.host_wait = options.gpu_host_wait;
    config.gpu = gpu;
  }
}

int Run(const Options& options) {
  const auto run_begin = Clock::now();
  std::filesystem::create_directories(options.out);
  const std::filesystem::path work = options.out / "work";
  std::filesystem::create_directories(work);
  // The gallery, keys and ledgers are owner-only like every Probity data directory.
  ::chmod(work.c_str(), 0700);

  const int cpu_threads = options.cpu_threads > 0 ? options.cpu_threads : omp_get_max_threads();
  const int gpus = options.cpu_only ? 0 : index::GpuDeviceCount();
  const bool use_gpu = gpus > options.device && GpuReferenceAvailable();
  const std::string gpu_name = use_gpu ? GpuName(options.device) : "none";
  Log(absl::StrFormat("GPU build: %s; CUDA devices: %d; GPU used: %s; CPU threads: %d",
                      index::GpuBuild() ? "yes" : "no", gpus, gpu_name, cpu_threads));

  Dataset data;
  data.synthetic = SyntheticFor(options);
  const index::CollectionSpec spec{options.spec, index::Metric::kInnerProduct, options.dim};
  const int64_t total_vectors = data.synthetic.identities * options.images_per_identity;

  // ---- 1. Build the index once (GPU: FAISS GPU train and add; CPU: Probity's) ----
  Log(absl::StrFormat("building %s over %d x %d (%s)", options.spec, total_vectors, options.dim,
                      use_gpu ? "on the GPU" : "on the CPU"));
  auto build_begin = Clock::now();
  std::unique_ptr<FaissGpuReference> reference;
  std::unique_ptr<index::ShardedIndex> built;
  if (use_gpu) {
    reference = Must(FaissGpuReference::Train(spec, TrainingSample(options, data), options.device),
                     "train FAISS GPU");
    ForEachChunk(options, data, [&](const index::SyntheticChunk& chunk) {
      Must(reference->Add(chunk.gallery, IdsOf(chunk)), "add to FAISS GPU");
    });
    built = Must(reference->ToShardedIndex(spec), "copy the GPU index to the CPU");
  } else {
    built = BuildOnCpu(options, data, spec);
  }
  const double build_seconds = Seconds(build_begin);
  const std::filesystem::path generation = work / "gen-1";
  std::filesystem::remove_all(generation);
  Must(index::WriteGeneration(*built, 1, generation), "write the generation");
  built.reset();
  const int64_t num_queries = static_cast<int64_t>(data.query_labels.size());
  Log(absl::StrFormat("built in %.1f s; generation written; %d queries", build_seconds,
                      num_queries));

  auto query_rows = [&](int64_t first, int64_t count) {
    return std::span<const float>(data.queries).subspan(first * options.dim, count * options.dim);
  };
  auto params_for = [](int nprobe) {
    index::SearchParams params;
    params.k = kK;
    params.nprobe = nprobe;
    return params;
  };

  // Both Probity indexes come from the same generation files: the CPU one, and one placed on
  // the GPU through Probity's GPU shard API.
  auto cpu_index = Must(index::LoadGeneration(generation), "load the generation (CPU)");
  std::unique_ptr<index::ShardedIndex> gpu_index;
  std::string gpu_memory_line;
  if (use_gpu) {
    gpu_index = Must(index::LoadGeneration(generation), "load the generation (GPU)");
    index::GpuOptions gpu_options;
    gpu_options.devices = {options.device};
    auto runtime = Must(index::GpuRuntime::Create(gpu_options), "GPU runtime");
    const auto before = runtime->MemoryInfo(options.device);
    Must(gpu_index->PlaceOnGpus(runtime), "place the shard on the GPU");
    const auto after = runtime->MemoryInfo(options.device);
    const auto shape = index::GpuShardShapeOf(gpu_index->shard_index(0));
    if (before.ok() && after.ok() && shape.ok()) {
      gpu_memory_line = GpuMemoryLine(
          before->first - after->first, index::EstimateShardGpuMemory(*shape, gpu_options),
          index::GpuTempMemoryBytes(gpu_options, before->second), total_vectors);
      Log(gpu_memory_line);
    }
  }
  omp_set_num_threads(cpu_threads);

  std::ostringstream report;
  report << "### GPU benchmark (bench/gpu/run.sh)\n\n";
  report << absl::StrFormat(
      "GPU: %s. CPU threads: %d. Index: `%s`, inner product, %d x %d synthetic face-like vectors "
      "(%d identities x %d images), k = %d, %d held-out queries. Build (train + add%s): %.0f s. "
      "Whole run: RUN_SECONDS s.\n\n",
      gpu_name, cpu_threads, options.spec, total_vectors, options.dim, data.synthetic.identities,
      options.images_per_identity, kK, num_queries, use_gpu ? ", FAISS GPU" : ", Probity CPU",
      build_seconds);

  // results.md is rewritten after every part, so a run cut short keeps what it measured.
  auto write_report = [&](const std::string& run_seconds) {
    std::string text = report.str();
    const std::string marker = "RUN_SECONDS";
    text.replace(text.find(marker), marker.size(), run_seconds);
    std::ofstream(options.out / "results.md") << text;
    return text;
  };
  if (!gpu_memory_line.empty()) report << gpu_memory_line << "\n\n";
  write_report("(unfinished)");

  // ---- 2. Probity GPU shard against FAISS GPU in-process, batch x nprobe ----
  std::vector<std::vector<double>> probity_gpu_qps(options.nprobes.size());
  if (use_gpu) {
    Log("Probity GPU shard vs FAISS GPU in-process");
    std::vector<Row> rows;
    double worst = 1e9;
    for (size_t p = 0; p < options.nprobes.size(); ++p) {
      const int nprobe = options.nprobes[p];
      for (int batch : options.batches) {
        double faiss_qps = 0;
        double probity_qps = 0;
        // Interleaved twice; the better of each counts (throughput on an otherwise idle GPU).
        for (int repeat = 0; repeat < 2; ++repeat) {
          faiss_qps = std::max(
              faiss_qps,
              MeasureQps(num_queries, batch, options.seconds_per_point, [&](int64_t f, int64_t n) {
                Must(reference->Search(query_rows(f, n), kK, nprobe).status(), "FAISS GPU");
              }));
          probity_qps = std::max(
              probity_qps,
              MeasureQps(num_queries, batch, options.seconds_per_point, [&](int64_t f, int64_t n) {
                Must(gpu_index->Search(query_rows(f, n), params_for(nprobe)).status(),
                     "Probity GPU");
              }));
        }
        probity_gpu_qps[p].push_back(probity_qps);
        worst = std::min(worst, probity_qps / faiss_qps);
        rows.push_back(
            {{std::to_string(nprobe), std::to_string(batch), Fmt(faiss_qps), Fmt(probity_qps),
              Fmt(probity_qps / faiss_qps, 2), Verdict(probity_qps >= 0.9 * faiss_qps)}});
        Log(absl::StrFormat("  nprobe %d batch %d: FAISS %.0f q/s, Probity %.0f q/s", nprobe, batch,
                            faiss_qps, probity_qps));
      }
    }
    report << "#### Probity GPU shard vs FAISS GPU in-process (same index, batch, nprobe)\n\n"
           << "Target: Probity >= 0.9x FAISS. Lowest ratio: " << Fmt(worst, 2) << " ("
           << Verdict(worst >= 0.9) << ").\n\n"
           << Table({"nprobe", "batch", "FAISS GPU q/s", "Probity GPU q/s", "Probity / FAISS",
                     "target 0.9x"},
                    rows)
           << "\n";
    write_report("(unfinished)");
  }

  // ---- 2b. Several GPU copies of the shard searched at once against one copy ----
  if (use_gpu && !options.compare_gpu_copies.empty()) {
    const int nprobe = options.service_nprobe;
    Log(
        absl::StrFormat("GPU copies searched by as many threads vs one copy by one thread "
                        "(nprobe %d)",
                        nprobe));
    struct Copies {
      int copies;
      std::unique_ptr<index::ShardedIndex> index;
    };
    std::vector<Copies> placed;
    for (int copies : options.compare_gpu_copies) {
      auto several = Must(index::LoadGeneration(generation), "load the generation (GPU copies)");
      index::GpuOptions gpu_options;
      gpu_options.devices = {options.device};
      gpu_options.copies_per_shard = copies;
      Must(several->PlaceOnGpus(Must(index::GpuRuntime::Create(gpu_options), "GPU runtime")),
           absl::StrCat("place ", copies, " copies of the shard on the GPU"));
      placed.push_back({copies, std::move(several)});
    }
    auto measure = [&](const index::ShardedIndex& searched, int threads, int batch) {
      return MeasureConcurrentQps(
          threads, num_queries, batch, options.seconds_per_point, [&](int64_t f, int64_t n) {
            Must(searched.Search(query_rows(f, n), params_for(nprobe)).status(), "GPU copies");
          });
    };
    std::vector<Row> rows;
    for (int batch : {8, 16, 32, 64, 128, 256}) {
      double one = 0;
      std::vector<double> many(placed.size(), 0);
      for (int repeat = 0; repeat < 2; ++repeat) {  // interleaved; the better of each counts
        one = std::max(one, measure(*gpu_index, 1, batch));
        for (size_t c = 0; c < placed.size(); ++c) {
          many[c] = std::max(many[c], measure(*placed[c].index, placed[c].copies, batch));
        }
      }
      Row row{{std::to_string(batch), Fmt(one)}};
      std::string line = absl::StrFormat("  batch %d: one copy %.0f q/s", batch, one);
      for (size_t c = 0; c < placed.size(); ++c) {
        row.cells.push_back(Fmt(many[c]));
        row.cells.push_back(Fmt(many[c] / one, 2));
        line += absl::StrFormat(", %d copies %.0f q/s (%.2fx)", placed[c].copies, many[c],
                                many[c] / one);
      }
      rows.push_back(row);
      Log(line);
    }
    std::vector<std::string> header = {"batch", "1 copy, 1 thread q/s"};
    for (const Copies& c : placed) {
      header.push_back(absl::StrCat(c.copies, " copies, ", c.copies, " threads q/s"));
      header.push_back("ratio");
    }
    report << absl::StrFormat(
                  "#### GPU copies of the shard searched at once (nprobe %d)\n\n"
                  "One copy searched by one thread (one call at a time, as the batcher runs a "
                  "shard by default) against N copies (config gpu.copies_per_shard), each with "
                  "its own FAISS resources, searched by N threads at once, at the batch sizes "
                  "the service's dynamic batching forms; the better of two interleaved "
                  "measurements each.\n\n",
                  nprobe)
           << Table(header, rows) << "\n";
    write_report("(unfinished)");
  }

  // ---- 3. GPU against every CPU core, and identity hit@10 of both on the same files ----
  {
    Log(absl::StrFormat("GPU vs CPU (%d threads); identity hit@%d", cpu_threads, kK));
    std::vector<Row> rows;
    double worst_gap = 0;
    const int64_t cpu_queries = std::min(options.cpu_qps_queries, num_queries);
    const int64_t batch = std::min<int64_t>(1024, cpu_queries);
    for (size_t p = 0; p < options.nprobes.size(); ++p) {
      const int nprobe = options.nprobes[p];
      const double cpu_qps =
          MeasureQps(cpu_queries, batch, options.seconds_per_point, [&](int64_t f, int64_t n) {
            Must(cpu_index->Search(query_rows(f, n), params_for(nprobe)).status(), "CPU search");
          });
      const auto cpu_hits =
          Must(cpu_index->Search(data.queries, params_for(nprobe)), "CPU search (all)");
      const double cpu_hit =
          IdentityHitRate(cpu_hits, data.query_labels, options.images_per_identity);
      if (use_gpu) {
        const auto gpu_hits =
            Must(gpu_index->Search(data.queries, params_for(nprobe)), "GPU search (all)");
        const double gpu_hit =
            IdentityHitRate(gpu_hits, data.query_labels, options.images_per_identity);
        // The sweep's batch-1024 column when it was measured, else measure it here.
        double gpu_qps = 0;
        for (size_t b = 0; b < options.batches.size(); ++b) {
          if (options.batches[b] == 1024) gpu_qps = probity_gpu_qps[p][b];
        }
        if (gpu_qps == 0) {
          gpu_qps =
              MeasureQps(num_queries, 1024, options.seconds_per_point, [&](int64_t f, int64_t n) {
                Must(gpu_index->Search(query_rows(f, n), params_for(nprobe)).status(),
                     "GPU search");
              });
        }
        worst_gap = std::max(worst_gap, std::abs(gpu_hit - cpu_hit));
        rows.push_back(
            {{std::to_string(nprobe), Fmt(cpu_qps), Fmt(gpu_qps), Fmt(gpu_qps / cpu_qps, 1),
              Fmt(cpu_hit, 4), Fmt(gpu_hit, 4), Fmt(gpu_hit - cpu_hit, 4)}});
      } else {
        rows.push_back(
            {{std::to_string(nprobe), Fmt(cpu_qps), "-", "-", Fmt(cpu_hit, 4), "-", "-"}});
      }
      Log(absl::StrFormat("  nprobe %d: CPU %.0f q/s, CPU hit@%d %.4f", nprobe, cpu_qps, kK,
                          cpu_hit));
    }
    report << absl::StrFormat(
                  "#### GPU vs all %d CPU threads of the same machine (Probity, batch 1024)\n\n"
                  "CPU throughput over the first %d queries; identity hit@%d (a hit of the "
                  "query's own identity among the top %d) over all %d queries, from the same "
                  "generation files. Target: GPU hit@%d equals CPU's within 0.01. ",
                  cpu_threads, cpu_queries, kK, kK, num_queries, kK)
           << (use_gpu ? absl::StrCat("Largest difference: ", Fmt(worst_gap, 4), " (",
                                      Verdict(worst_gap <= 0.01), ").\n\n")
                       : std::string("No GPU: CPU only.\n\n"))
           << Table({"nprobe", "CPU q/s", "GPU q/s", "GPU / CPU", "CPU hit@10", "GPU hit@10",
                     "GPU - CPU"},
                    rows)
           << "\n";
    write_report("(unfinished)");
  }

  // ---- 4. The embedded service end to end against FAISS in-process batch 1024 ----
  {
    const int nprobe = options.service_nprobe;
    double reference_qps = 0;
    if (use_gpu) {
      reference_qps =
          MeasureQps(num_queries, 1024, options.seconds_per_point, [&](int64_t f, int64_t n) {
            Must(reference->Search(query_rows(f, n), kK, nprobe).status(), "FAISS GPU");
          });
    } else {
      // FAISS CPU in-process on the very index Probity serves.
      const faiss::Index& faiss_cpu = cpu_index->shard_index(0);
      faiss::SearchParametersIVF ivf;
      ivf.nprobe = nprobe;
      std::vector<float> distances(1024 * kK);
      std::vector<faiss::Index::idx_t> labels(1024 * kK);
      const int64_t cpu_queries = std::min(options.cpu_qps_queries, num_queries);
      reference_qps =
          MeasureQps(cpu_queries, 1024, options.seconds_per_point, [&](int64_t f, int64_t n) {
            faiss_cpu.search(n, query_rows(f, n).data(), kK, distances.data(), labels.data(), &ivf);
          });
    }
    const std::string reference_name = use_gpu ? "FAISS GPU" : "FAISS CPU";
    Log(absl::StrFormat("service end to end; reference %s batch 1024 at nprobe %d: %.0f q/s; %s",
                        reference_name, nprobe, reference_qps, GrpcSetup(options)));
    cpu_index.reset();
    gpu_index.reset();

    const ServiceWorld world = MakeCredentials(work);
    std::vector<Row> rows;
    std::vector<Row> floor_rows;
    std::map<std::pair<ClientKind, int>, double> floor_qps;  // by kind and number of clients
    std::map<ClientKind, std::string> target_lines;
    // Clients in another process, at the target's clients with fsync off, when search_load is
    // found: the token and query rows go to it as files.
    OtherProcessLoad other_process;
    other_process.program = options.load_program.empty() ? FindLoadProgram() : options.load_program;
    if (!other_process.program.empty()) {
      other_process.token_file = work / "load-token";
      other_process.queries_file = work / "load-queries.fbin";
      Must(common::WriteOwnerOnlyFile(other_process.token_file, world.token),
           "write the load's token");
      Must(index::WriteFloatMatrix(other_process.queries_file, options.dim, data.queries),
           "write the load's queries");
      Log(absl::StrCat("clients in another process: ", other_process.program.string()));
    }
    auto run_load = [&](ClientKind kind, const ClientLoad& load) -> LoadResult {
      switch (kind) {
        case ClientKind::kCallback:
          return RunCallbackClients(load);
        case ClientKind::kOtherProcess:
          return Must(RunClientsInOtherProcess(load, other_process), "clients in another process");
        case ClientKind::kOtherProcesses: {
          OtherProcessLoad several = other_process;
          several.processes = options.load_processes;
          return Must(RunClientsInOtherProcess(load, several), "clients in other processes");
        }
        case ClientKind::kThreads:
          break;
      }
      return RunClients(load);
    };
    // At the target's clients: the kinds besides a thread each.
    std::vector<ClientKind> target_kinds = {ClientKind::kCallback};
    if (!other_process.program.empty()) {
      target_kinds.push_back(ClientKind::kOtherProcess);
      if (options.load_processes > 1) target_kinds.push_back(ClientKind::kOtherProcesses);
    }
    struct Pass {
      bool fsync = false;
      bool deadlock_detection = false;
      std::optional<int> batch_wait_us = std::nullopt;  // instead of --batch-max-wait-us
      bool next_call_first = false;                     // batching.next_call_first
      bool direct_wakeups = false;                      // batching.direct_wakeups
      std::optional<int> gpu_copies = std::nullopt;     // instead of --gpu-copies-per-shard
      // Instead of --gpu-host-wait.
      std::optional<index::GpuHostWait> host_wait = std::nullopt;
    };
    std::vector<Pass> passes = {{.fsync = false}, {.fsync = true}};
    if (options.compare_abseil_deadlock_detection) {
      passes.push_back({.fsync = false, .deadlock_detection = true});
    }
    if (options.compare_batch_wait_us) {
      passes.push_back({.fsync = false, .batch_wait_us = options.compare_batch_wait_us});
    }
    if (options.compare_next_call_first) {
      passes.push_back({.fsync = false, .next_call_first = true});
    }
    if (options.compare_direct_wakeups) {
      passes.push_back({.fsync = false, .direct_wakeups = true});
      passes.push_back({.fsync = false, .next_call_first = true, .direct_wakeups = true});
    }
    if (use_gpu) {
      for (int copies : options.compare_gpu_copies) {
        passes.push_back({.fsync = false, .gpu_copies = copies});
        // Both together when both are compared: calls that overlap on the GPU and the
        // hand-over that kept the shard busiest with one copy.
        if (options.compare_next_call_first) {
          passes.push_back({.fsync = false, .next_call_first = true, .gpu_copies = copies});
        }
      }
      // Last: each runtime made with a host wait other than "auto" sets it for the process.
      for (index::GpuHostWait wait : options.compare_gpu_host_wait) {
        passes.push_back({.fsync = false, .host_wait = wait});
        for (int copies : options.compare_gpu_copies) {
          passes.push_back({.fsync = false, .gpu_copies = copies, .host_wait = wait});
        }
      }
    }
    for (const auto& [fsync, deadlock_detection, batch_wait_us, next_call_first, direct_wakeups,
                      gpu_copies, host_wait] : passes) {
      // A comparison pass: only the target's clients, fsync off.
      const bool comparison = deadlock_detection || batch_wait_us.has_value() || next_call_first ||
                              direct_wakeups || gpu_copies.has_value() || host_wait.has_value();
      if (deadlock_detection) common::TurnOnAbseilDeadlockDetection();
      service::ServerConfig config;
      config.data_dir = work;
      config.listen = "127.0.0.1:0";
      config.deployment = "bench";
      config.jwks_file = "jwks.json";
      config.ledger.dir = fsync                ? "ledger-fsync"
                          : host_wait          ? "ledger-no-fsync-host-wait"
                          : gpu_copies         ? "ledger-no-fsync-gpu-copies"
                          : deadlock_detection ? "ledger-no-fsync-detection"
                          : batch_wait_us      ? "ledger-no-fsync-batch-wait"
                          : direct_wakeups     ? (next_call_first ? "ledger-no-fsync-direct-next"
                                                                  : "ledger-no-fsync-direct")
                          : next_call_first    ? "ledger-no-fsync-next-call-first"
                                               : "ledger-no-fsync";
      config.ledger.signing_key = "ledger-key.pem";
      config.ledger.fsync = fsync;
      config.collections.push_back({kCollection, "gen-1", {}});
      config.plaintext = true;
      config.max_in_flight = 1024;
      config.default_nprobe = nprobe;
      config.refusal_rate_per_second = 1000;
      ConfigureServiceForBench(config, options, use_gpu);
      if (batch_wait_us) config.batching.max_wait_us = *batch_wait_us;
      if (next_call_first) config.batching.next_call_first = true;
      if (direct_wakeups) config.batching.direct_wakeups = true;
      if (gpu_copies) config.gpu->copies_per_shard = *gpu_copies;
      if (host_wait) config.gpu->host_wait = *host_wait;
      std::filesystem::remove_all(work / config.ledger.dir);
      ledger::Options ledger_options;
      ledger_options.dir = work / config.ledger.dir;
      ledger_options.origin = config.ledger.origin;
      ledger_options.signing_key = work / config.ledger.signing_key;
      ledger_options.fsync = fsync;
      auto counting = std::make_unique<CountingLedger>(
          Must(ledger::Ledger::Open(ledger_options), "open the ledger"));
      CountingLedger* ledger = counting.get();
      service::Server::Overrides overrides;
      overrides.ledger = std::move(counting);
      auto started = service::Server::StartRouter(config, std::move(overrides));
      if (!started.ok() && host_wait) {
        // Only CUDA can say whether it takes these flags: a refusal ends this pass, not the run.
        Log(absl::StrCat("  host wait ", index::GpuHostWaitName(*host_wait),
                         ": the service did not start: ", started.status().ToString()));
        continue;
      }
      auto server = Must(std::move(started), "start the service");
      auto load_on = [&](int port, int clients) {
        ClientLoad load;
        load.port = port;
        load.token = world.token;
        load.collection = kCollection;
        load.k = kK;
        load.nprobe = nprobe;
        load.dim = options.dim;
        load.queries = data.queries;
        load.clients = clients;
        load.seconds = options.service_seconds;
        return load;
      };
      if (!fsync && !comparison) {
        // gRPC's floor first, while only this server is up: the same clients against a server
        // that answers each call with this service's real response and does no work.
        const v1::SearchResponse canned =
            Must(SearchOnce(load_on(server->port(), 1)), "a search for the canned answer");
        auto floor = CannedSearchServer::Start(canned, config.max_in_flight, 16 << 20);
        if (floor == nullptr) Must(absl::UnavailableError("cannot listen"), "the gRPC floor");
        // The same floor with one completion queue per core instead of gRPC's one (the
        // service's default), at the target's 128 clients: what more queues would gain here.
        const int per_core = service::OneCompletionQueuePerCore();
        auto floor_per_core =
            CannedSearchServer::Start(canned, config.max_in_flight, 16 << 20, per_core);
        if (floor_per_core == nullptr) {
          Must(absl::UnavailableError("cannot listen"), "the gRPC floor");
        }
        // The floor on gRPC's callback API, answering in the handler, for the clients in another
        // process: what a service on that API could reach if its waits did not hold the handler
        // (on the development VM, 1.22-1.31x the synchronous floor at 64 in-process clients).
        auto floor_callback = CannedSearchServer::Start(canned, config.max_in_flight, 16 << 20, 1,
                                                        nullptr, /*callback_api=*/true);
        if (floor_callback == nullptr) {
          Must(absl::UnavailableError("cannot listen"), "the gRPC floor");
        }
        struct FloorPoint {
          int clients;
          int queues;  // gRPC completion queues of the server
          ClientKind kind;
          bool callback_api = false;  // the server's
        };
        std::vector<FloorPoint> floor_points;
        for (int clients : options.clients) {
          floor_points.push_back({clients, 1, ClientKind::kThreads});
          if (clients == kTargetClients) {
            for (ClientKind kind : target_kinds) floor_points.push_back({clients, 1, kind});
            if (per_core > 1) floor_points.push_back({clients, per_core, ClientKind::kThreads});
            if (!other_process.program.empty()) {
              floor_points.push_back({clients, 1, ClientKind::kOtherProcess, true});
            }
          }
        }
        for (const auto& [clients, queues, kind, callback_api] : floor_points) {
          const int port = callback_api  ? floor_callback->port()
                           : queues == 1 ? floor->port()
                                         : floor_per_core->port();
          const ClientLoad load = load_on(port, clients);
          const LoadResult result = run_load(kind, load);
          if (queues == 1 && !callback_api) floor_qps[{kind, clients}] = result.qps;
          floor_rows.push_back(
              {{ClientsLabel(clients, kind, options.load_processes),
                callback_api ? "1, callback API server" : std::to_string(queues), Fmt(result.qps),
                Fmt(result.qps / reference_qps, 3), Fmt(result.p50_ms, 2), Fmt(result.p99_ms, 2),
                Fmt(result.cpu_us_per_call), Fmt(result.cores_busy, 1),
                std::to_string(result.failures)}});
          Log(absl::StrFormat(
              "  gRPC floor, %s clients, %d completion queues%s: %.0f q/s "
              "(%.3fx), p50 %.2f ms, p99 %.2f ms, CPU %.0f us per call, %.1f "
              "cores busy, failures %d %s",
              ClientsLabel(clients, kind, options.load_processes), queues,
              callback_api ? ", callback API server" : "", result.qps, result.qps / reference_qps,
              result.p50_ms, result.p99_ms, result.cpu_us_per_call, result.cores_busy,
              result.failures, result.first_error));
        }
      }
      // The service's clients: a thread each, and at the target's clients with fsync off also
      // on gRPC's callback API (what the service answers when the load takes less CPU) and in
      // another process (when it does not share gRPC's threads and polling with the load).
      std::vector<std::pair<int, ClientKind>> points;
      for (int clients : options.clients) {
        if (comparison && clients != kTargetClients) continue;
        points.push_back({clients, ClientKind::kThreads});
        if (!fsync && clients == kTargetClients) {
          for (ClientKind kind : target_kinds) {
            // Comparisons with the clients that take least of this process: callback clients
            // for the deadlock detection (as first measured), one other process for the rest
            // (on the H200 it drew more from gRPC than 4 processes did).
            const bool wanted =
                !comparison || (deadlock_detection ? kind == ClientKind::kCallback
                                                   : kind == ClientKind::kOtherProcess);
            if (wanted) points.push_back({clients, kind});
          }
        }
      }
      for (const auto& [clients, kind] : points) {
        const ClientLoad load = load_on(server->port(), clients);
        ledger->TakeStats();
        const service::ServiceCounters& counters = server->counters();
        const uint64_t answered_before = counters.searches_answered.load();
        const uint64_t shard_phase_before = counters.shard_phase_micros.load();
        const uint64_t ledger_before = counters.ledger_append_micros.load();
        const service::LatencyHistogram::Snapshot shard_phase_tail_before =
            counters.shard_phase_latency.Read();
        const service::LatencyHistogram::Snapshot ledger_tail_before =
            counters.ledger_append_latency.Read();
        const service::ShardCounters& shard_counters = counters.shards;
        const uint64_t calls_before = shard_counters.searches_run.load();
        const uint64_t search_micros_before = shard_counters.search_micros.load();
        const LoadResult result = run_load(kind, load);
        const CountingLedger::Stats stats = ledger->TakeStats();
        const uint64_t faiss_calls = shard_counters.searches_run.load() - calls_before;
        const double answered =
            static_cast<double>(counters.searches_answered.load() - answered_before);
        // How long the FAISS calls took, and so how much of the time the one shard (the GPU)
        // searched: calls per second (answered per second over queries per call) times that.
        // The rest is the time the batcher kept it idle between calls.
        const double ms_per_call =
            faiss_calls == 0
                ? 0
                : static_cast<double>(shard_counters.search_micros.load() - search_micros_before) /
                      1e3 / static_cast<double>(faiss_calls);
        // One shard: every answered request took part in one FAISS call.
        const double queries_per_call =
            faiss_calls == 0 ? 0 : answered / static_cast<double>(faiss_calls);
        // Where an answered call's time went: its mean wait in the shard phase (batching and
        // the FAISS call) and in the ledger append; the rest of its latency is gRPC's, the
        // warrant check's and the answer's.
        const double shard_phase_ms =
            answered > 0
                ? static_cast<double>(counters.shard_phase_micros.load() - shard_phase_before) /
                      1e3 / answered
                : 0;
        const double ledger_ms =
            answered > 0
                ? static_cast<double>(counters.ledger_append_micros.load() - ledger_before) / 1e3 /
                      answered
                : 0;
        // And their tails: the p99 of each phase over the same searches, which says which
        // phase the service's p99 comes from (percentiles do not add up).
        const double shard_phase_p99_ms = counters.shard_phase_latency.Read()
                                              .Since(shard_phase_tail_before)
                                              .QuantileMicros(0.99) /
                                          1e3;
        const double ledger_p99_ms =
            counters.ledger_append_latency.Read().Since(ledger_tail_before).QuantileMicros(0.99) /
            1e3;
        const double shard_busy =
            queries_per_call > 0 ? result.qps / queries_per_call * ms_per_call / 1e3 : 0;
        const double ratio = result.qps / reference_qps;
        const double floor = floor_qps[{kind, clients}];
        const std::string fsync_label =
            fsync                ? "on"
            : host_wait          ? absl::StrCat("off, ",
                                       gpu_copies ? absl::StrCat(*gpu_copies, " GPU copies, ") : "",
                                                "host wait ", index::GpuHostWaitName(*host_wait))
            : gpu_copies         ? absl::StrCat("off, ", *gpu_copies, " GPU copies",
                                        next_call_first ? ", next call first" : "")
            : deadlock_detection ? "off, Abseil deadlock detection"
            : batch_wait_us      ? absl::StrCat("off, batch wait ", *batch_wait_us, " us")
            : direct_wakeups
                ? (next_call_first ? "off, direct wakeups, next call first" : "off, direct wakeups")
            : next_call_first ? "off, next call first"
                              : "off";
        rows.push_back(
            {{fsync_label, ClientsLabel(clients, kind, options.load_processes), Fmt(result.qps),
              Fmt(ratio, 3), Fmt(result.p50_ms, 2), Fmt(result.p99_ms, 2),
              absl::StrFormat("%.1f / %d", stats.mean_in_flight, stats.max_in_flight),
              Fmt(queries_per_call, 1), Fmt(ms_per_call, 3), Fmt(shard_busy, 2),
              Fmt(shard_phase_ms, 3), Fmt(shard_phase_p99_ms, 2), Fmt(ledger_ms, 3),
              Fmt(ledger_p99_ms, 2), Fmt(result.cpu_us_per_call), Fmt(result.cores_busy, 1),
              floor > 0 ? Fmt(result.qps / floor, 2) : "-", std::to_string(result.failures)}});
        Log(absl::StrFormat(
            "  fsync %s, %s clients: %.0f q/s (%.3fx), p50 %.2f ms, p99 %.2f ms, "
            "appends in flight %.1f / %d, %.1f queries per FAISS call of %.3f ms, shard busy "
            "%.2f, %.3f ms in the shard phase (p99 %.2f) and %.3f ms in the ledger (p99 %.2f) per "
            "call, CPU %.0f us per call, %.1f cores busy, failures %d %s",
            fsync_label, ClientsLabel(clients, kind, options.load_processes), result.qps, ratio,
            result.p50_ms, result.p99_ms, stats.mean_in_flight, stats.max_in_flight,
            queries_per_call, ms_per_call, shard_busy, shard_phase_ms, shard_phase_p99_ms,
            ledger_ms, ledger_p99_ms, result.cpu_us_per_call, result.cores_busy, result.failures,
            result.first_error));
        if (!fsync && !comparison && clients == kTargetClients) {
          const bool met = ratio >= 0.25 && result.p99_ms < 5 && result.failures == 0;
          target_lines[kind] =
              absl::StrFormat("%.3fx at p99 %.2f ms (%s)", ratio, result.p99_ms, Verdict(met));
        }
      }
      server->Shutdown(absl::Seconds(5));
      server->Wait();
      if (deadlock_detection) common::TurnOffAbseilDeadlockDetection();
    }
    report << absl::StrFormat(
                  "#### Service end to end vs %s in-process batch 1024 (nprobe %d)\n\n"
                  "Each client sends one query per Search call over loopback gRPC (warrant "
                  "check, search, ledger append with a signed checkpoint, answer); %s. "
                  "Reference: %s in-process, batch 1024, same index and nprobe: %.0f q/s. "
                  "\"Appends in flight\" is the mean / largest number of ledger appends waiting "
                  "together, the most one group commit could write with one fsync; \"queries per "
                  "FAISS call\" is what dynamic batching reached (1 = no sharing), \"ms per "
                  "FAISS call\" how long those calls took and \"shard busy\" the share of the "
                  "time the shard (the GPU) spent in them, the rest being the time the batcher "
                  "left it idle between calls; \"ms in shard phase\" and \"ms in ledger\" "
                  "are an answered call's mean wall time in the router's shard phase (batching "
                  "and the FAISS call) and in its ledger append (the rest of its latency is "
                  "gRPC's, the warrant check's and the answer's), and the \"p99\" columns the 99th "
                  "percentile of each phase over the same searches (from the server's latency "
                  "histograms; percentiles do not add up); \"CPU us per call\" and \"cores "
                  "busy\" are the whole process's (clients and server) CPU "
                  "time per answered call and per second of the window; \"128 callback\" are "
                  "128 clients on gRPC's callback API, one call in flight each but no thread "
                  "each, so that less of the machine goes to the load; \"off, Abseil deadlock "
                  "detection\" (with --compare-abseil-deadlock-detection) is fsync off with "
                  "Abseil's Mutex deadlock detection on, as Debian's Abseil has it unless the "
                  "program turns it off (the probity binary and this benchmark do); \"off, batch "
                  "wait N us\" (with --compare-batch-wait-us N) is fsync off with that "
                  "dynamic-batching wait instead; \"off, next call first\" (with "
                  "--compare-next-call-first) is fsync off with the batcher handing the shard to "
                  "the next call before waking the finished call's requests (config "
                  "batching.next_call_first); \"off, direct wakeups\" (with "
                  "--compare-direct-wakeups) has each batched search wait on a signal of its own "
                  "and return without the batcher's lock (config batching.direct_wakeups), in "
                  "both hand-over orders; \"off, N GPU copies\" (with --compare-gpu-copies N) "
                  "places N copies of the shard on the GPU (config gpu.copies_per_shard) and lets "
                  "the batcher run N calls at once, one per copy (its \"shard busy\" adds the "
                  "calls' times, so it can pass 1), and with --compare-next-call-first also "
                  "with next call first; \"off, host wait W\" (with --compare-gpu-host-wait W) "
                  "has the service's threads wait for the GPU that way (config gpu.host_wait: "
                  "spin, yield, or block, which sleeps instead of keeping a core busy), also "
                  "with each N of --compare-gpu-copies; \"128 other "
                  "process\" are 128 clients in another process (search_load; its CPU time is "
                  "counted with this process's over its whole life), which do not share gRPC's "
                  "threads and polling with the server; \"128 in N other processes\" split them "
                  "over N such processes, so that they do not share one process's polling "
                  "either (p50 and p99 are then the largest of the processes' own). Target "
                  "(fsync off, 128 clients): >= 0.25x the reference with p99 < 5 ms: %s "
                  "(callback clients: %s; clients in another process: %s%s).\n\n",
                  reference_name, nprobe,
                  absl::StrCat(
                      options.batching
                          ? absl::StrFormat("dynamic batching on (up to %d queries, "
                                            "%d us wait)",
                                            options.batch_max_size, options.batch_max_wait_us)
                          : "dynamic batching off",
                      "; ", GrpcSetup(options)),
                  reference_name, reference_qps, TargetLine(target_lines, ClientKind::kThreads),
                  TargetLine(target_lines, ClientKind::kCallback),
                  TargetLine(target_lines, ClientKind::kOtherProcess),
                  options.load_processes > 1
                      ? absl::StrFormat("; in %d other processes: %s", options.load_processes,
                                        TargetLine(target_lines, ClientKind::kOtherProcesses))
                      : "")
           << Table({"fsync", "clients", "q/s", "ratio", "p50 ms", "p99 ms", "appends in flight",
                     "queries per FAISS call", "ms per FAISS call", "shard busy",
                     "ms in shard phase", "p99 ms in shard phase", "ms in ledger",
                     "p99 ms in ledger", "CPU us per call", "cores busy", "of floor", "failures"},
                    rows)
           << "\n"
           << "\"Of floor\" is the service's q/s over gRPC's floor's at the same clients (table "
              "below).\n\n"
           << absl::StrFormat(
                  "#### gRPC's floor: a Search server that does no work, same clients\n\n"
                  "The same clients against a server that answers every call with one real "
                  "response of this service (same candidates, same signed receipt) and does "
                  "nothing else: no warrant, no search, no ledger; server options as the "
                  "service's (gRPC's one completion queue; at 128 clients also one per core, %d "
                  "here, the 128 clients on gRPC's callback API, and a server on gRPC's callback "
                  "API that answers in its handler, with the clients in another process). Its q/s "
                  "is the most any synchronous gRPC service reaches on this machine with these "
                  "clients; \"ratio\" is against "
                  "the same reference (%s in-process, batch "
                  "1024, nprobe %d: %.0f q/s), so a floor below 0.25 puts the service target out "
                  "of reach of any gRPC service here.\n\n",
                  service::OneCompletionQueuePerCore(), reference_name, nprobe, reference_qps)
           << Table({"clients", "completion queues", "q/s", "ratio", "p50 ms", "p99 ms",
                     "CPU us per call", "cores busy", "failures"},
                    floor_rows)
           << "\n";
  }

  const std::string text = write_report(Fmt(Seconds(run_begin)));
  std::printf("%s", text.c_str());
  Log(absl::StrCat("results in ", (options.out / "results.md").string()));
  return 0;
}

}  // namespace
}  // namespace probity::bench

int main(int argc, char** argv) {
  // As in the probity binary (common/abseil_deadlock_detection.h says why).
  probity::common::TurnOffAbseilDeadlockDetection();
  probity::bench::Options options;
  CLI::App app{
      "Probity GPU benchmark: Probity's GPU shard, the service and the CPU against "
      "FAISS in-process on one synthetic index; writes OUT/results.md"};
  app.add_option("--out", options.out, "result directory (also holds the index and ledgers)")
      ->required();
  app.add_flag("--smoke", options.smoke,
               "a small run (200,000 vectors, IVF256,PQ64, short points) to check the program");
  app.add_flag("--cpu-only", options.cpu_only, "ignore GPUs");
  app.add_option("--vectors", options.vectors, "gallery size");
  app.add_option("--spec", options.spec, "FAISS factory spec");
  app.add_option("--train-rows", options.train_rows, "training sample size");
  app.add_option("--queries", options.queries, "held-out queries");
  app.add_option("--nprobe", options.nprobes, "nprobe values")->delimiter(',');
  app.add_option("--batch", options.batches, "batch sizes")->delimiter(',');
  app.add_option("--clients", options.clients, "concurrent service clients")->delimiter(',');
  app.add_option("--seconds-per-point", options.seconds_per_point, "time per measured point");
  app.add_option("--service-seconds", options.service_seconds, "time per service point");
  app.add_option("--service-nprobe", options.service_nprobe, "nprobe of the service runs");
  app.add_option("--cpu-threads", options.cpu_threads, "CPU threads (0: all cores)");
  app.add_option("--cpu-queries", options.cpu_qps_queries, "queries per CPU throughput point");
  app.add_option("--device", options.device, "CUDA device");
  app.add_option("--batching", options.batching, "the service's dynamic batching (true/false)");
  app.add_option("--batch-max-size", options.batch_max_size, "dynamic batching: largest batch");
  app.add_option("--batch-max-wait-us", options.batch_max_wait_us,
                 "dynamic batching: longest wait for a batch to fill");
  app.add_option("--load-program", options.load_program,
                 "search_load, for 128 clients in another process (default: beside gpu_bench "
                 "or in the build tree)");
  app.add_option("--load-processes", options.load_processes,
                 "also run the 128 clients split over this many other processes (1: not)")
      ->check(CLI::Range(1, 64));
  app.add_option("--service-completion-queues", options.service_completion_queues,
                 "the service's gRPC completion queues (its grpc_completion_queues; 0: gRPC's "
                 "one)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--compare-batch-wait-us", options.compare_batch_wait_us,
                 "also run the service at 128 clients (fsync off) with this dynamic-batching "
                 "wait instead of --batch-max-wait-us")
      ->check(CLI::Range(0, 1000000));
  app.add_flag("--compare-next-call-first", options.compare_next_call_first,
               "also run the service at 128 clients (fsync off) with the batcher handing the "
               "shard to the next call before waking the finished call's requests");
  app.add_option("--gpu-copies-per-shard", options.gpu_copies_per_shard,
                 "the service's GPU copies of the shard (config gpu.copies_per_shard)")
      ->check(CLI::Range(1, probity::index::kMaxGpuCopiesPerShard));
  app.add_option("--compare-gpu-copies", options.compare_gpu_copies,
                 "also, for each N: N GPU copies searched at once against one, and the service "
                 "with N copies (and with next call first too, with --compare-next-call-first)")
      ->delimiter(',')
      ->check(CLI::Range(2, probity::index::kMaxGpuCopiesPerShard));
  std::map<std::string, probity::index::GpuHostWait> host_waits;  // the config's names
  for (probity::index::GpuHostWait wait : probity::index::kGpuHostWaits) {
    host_waits[probity::index::GpuHostWaitName(wait)] = wait;
  }
  app.add_option("--gpu-host-wait", options.gpu_host_wait,
                 "how the service's threads wait for the GPU (config gpu.host_wait)")
      ->transform(CLI::CheckedTransformer(host_waits));
  app.add_option("--compare-gpu-host-wait", options.compare_gpu_host_wait,
                 "also run the service at 128 clients (fsync off) with each of these host waits "
                 "(spin, yield, block), alone and with each --compare-gpu-copies N; last")
      ->delimiter(',')
      ->transform(CLI::CheckedTransformer(host_waits));
  app.add_flag("--compare-direct-wakeups", options.compare_direct_wakeups,
               "also run the service at 128 clients (fsync off) with each batched search "
               "waiting on its own signal, in both hand-over orders");
  app.add_flag("--compare-abseil-deadlock-detection", options.compare_abseil_deadlock_detection,
               "also run the service at 128 clients (fsync off) with Abseil's Mutex deadlock "
               "detection on, to show what turning it off saves");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (options.smoke) {
    // Only what was not given explicitly changes.
    if (app.count("--vectors") == 0) options.vectors = 200'000;
    if (app.count("--spec") == 0) options.spec = "IVF256,PQ64";
    if (app.count("--train-rows") == 0) options.train_rows = 10'000;
    if (app.count("--queries") == 0) options.queries = 2048;
    if (app.count("--nprobe") == 0) options.nprobes = {8, 32};
    if (app.count("--batch") == 0) options.batches = {1, 64, 1024};
    if (app.count("--seconds-per-point") == 0) options.seconds_per_point = 0.2;
    if (app.count("--service-seconds") == 0) options.service_seconds = 0.5;
    if (app.count("--service-nprobe") == 0) options.service_nprobe = 8;
    options.chunk_identities = 5'000;
  }
  if (options.vectors < options.images_per_identity || options.queries < 1 ||
      options.nprobes.empty() || options.batches.empty() || options.clients.empty()) {
    std::fprintf(stderr, "nothing to measure: check --vectors, --queries, --nprobe, --batch\n");
    return 2;
  }
  return probity::bench::Run(options);
}
