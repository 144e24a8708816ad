// End-to-end Search over loopback gRPC (warrant check, fan-out to local shards, merge, ledger
// append, answer) against FAISS searched in-process through the same ShardedIndex, with the
// same index, queries and parameters, at 1, 8 and 64 concurrent clients; the service with and
// without the ledger's fsync; and the service (no fsync) with dynamic batching of shard searches
// on and off at 1, 16 and 64 clients; and the service (no fsync) with a search's local shards
// searched in one call once every core has a search and the way measured faster below that (the
// defaults) against always apart and always in one call, and with one gRPC completion queue per
// core against gRPC's one (the default), at 1 and 64 clients; and the floor and the service (no
// fsync) with clients on gRPC's callback API instead of a thread each; and the floor with the
// search (a server that runs the same FAISS search as the in-process reference, then answers
// with a canned response): the ceiling for any gRPC service that searches this index; and the
// floor, the floor with the search and the service again on gRPC's in-process transport, which
// takes the loopback TCP transport's cost out of each. Each client sends one query per call.
//
// Google Benchmark reports queries per second (items_per_second, real time) and the whole
// process's CPU time per query (cpu_us_per_query: clients, server and FAISS together, every
// thread), which is what bounds throughput on a saturated machine and varies far less with other
// load than wall-clock rates do; the latency percentiles of every configuration are printed as a
// table after the runs.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "common/callback_clients.h"
#include "common/canned_search_server.h"
#include "common/process_cpu.h"
#include "probity/common/abseil_deadlock_detection.h"
#include "probity/index/generation_build.h"
#include "probity/index/synthetic.h"
#include "probity/ledger/checkpoint.h"
#include "probity/service/auth.h"
#include "probity/service/grpc_server_options.h"
#include "probity/service/server.h"
#include "probity/v1/search.grpc.pb.h"
#include "probity/warrant/issue.h"

namespace probity::service {
namespace {

constexpr int kDim = 128;
constexpr int kNprobe = 16;
constexpr int kK = 10;
constexpr int kShards = 2;
constexpr char kCollection[] = "bench";
// search_together_from for a server whose searches never reach it: shards always apart.
constexpr int kNeverTogether = 1 << 20;

struct Bench {
  std::filesystem::path dir;
  index::SyntheticGallery gallery;
  std::unique_ptr<index::ShardedIndex> index;
  std::map<bool, std::unique_ptr<Server>> servers;  // by ledger fsync, batching off
  std::unique_ptr<Server> batched;                  // no fsync, batching on
  std::unique_ptr<Server> apart;  // no fsync, a search's shards never searched in one call
  std::unique_ptr<Server> always_together;  // no fsync, always in one call (from 1 search on)
  std::unique_ptr<Server> per_core;         // no fsync, one gRPC completion queue per core
  std::string token;
};

Bench& World() {
  static Bench* bench = [] {
    auto* b = new Bench;
    char pattern[] = "/tmp/probity-bench-XXXXXX";
    b->dir = mkdtemp(pattern);
    index::SyntheticOptions options;
    options.identities = 4000;
    options.images_per_identity = 5;
    options.num_queries = 1000;
    options.dim = kDim;
    options.ground_truth_k = 1;
    b->gallery = *index::GenerateSyntheticGallery(options);
    std::vector<int64_t> ids(b->gallery.gallery_labels.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
    index::InMemoryBuildOptions build;
    build.spec = {"IVF128,PQ16np", index::Metric::kInnerProduct, kDim};
    build.num_shards = kShards;
    build.vectors = b->gallery.gallery;
    build.ids = ids;
    build.train_size = static_cast<int64_t>(ids.size());  // train on the whole gallery
    build.generation = 1;
    build.output = b->dir / "gen-1";
    auto built = index::BuildGeneration(build);
    if (!built.ok()) {
      std::fprintf(stderr, "cannot build the bench index\n");
      std::exit(1);
    }
    b->index = std::move(*built);

    auto issuer = *warrant::Ed25519PrivateKey::Generate();
    std::ofstream(b->dir / "jwks.json")
        << *warrant::AppendToJwks("", *warrant::PublicJwk(issuer, "k1", "bench-issuer"));
    (void)ledger::GenerateSigningKey(b->dir / "ledger-key.pem");
    warrant::Claims claims;
    claims.iss = "bench-issuer";
    claims.sub = "bench";
    claims.aud = "bench";
    claims.jti = *warrant::RandomJti();
    claims.iat = claims.nbf = time(nullptr) - 10;
    claims.exp = time(nullptr) + 3600;
    claims.case_number = "BENCH";
    claims.purpose = "benchmark";
    claims.collections = {kCollection};
    claims.max_queries = int64_t{1} << 40;
    claims.max_k = 100;
    b->token = *warrant::IssueToken(claims, issuer, "k1");

    auto start = [&](bool fsync, bool batching, int search_together_from = 0,
                     int completion_queues = 0) {
      ServerConfig config;
      config.data_dir = b->dir;
      config.listen = "127.0.0.1:0";
      config.deployment = "bench";
      config.jwks_file = "jwks.json";
      config.ledger.dir = batching                    ? "ledger-batched"
                          : completion_queues > 0     ? "ledger-queue-per-core"
                          : search_together_from == 1 ? "ledger-always-together"
                          : search_together_from > 0  ? "ledger-apart"
                          : fsync                     ? "ledger-fsync"
                                                      : "ledger-nofsync";
      config.search_together_from = search_together_from;
      // The server that keeps shards apart does so whatever the measurements say.
      config.split_by_measurement = search_together_from != kNeverTogether;
      config.grpc_completion_queues = completion_queues;
      config.ledger.signing_key = "ledger-key.pem";
      config.ledger.fsync = fsync;
      config.collections.push_back({kCollection, "gen-1", {}});
      config.plaintext = true;
      config.max_in_flight = 256;
      config.refusal_rate_per_second = 1000;
      config.batching.enabled = batching;  // defaults: 256 queries per call, no wait
      auto server = Server::StartRouter(config);
      if (!server.ok()) {
        std::fprintf(stderr, "cannot start the bench server: %s\n",
                     std::string(server.status().message()).c_str());
        std::exit(1);
      }
      return std::move(*server);
    };
    for (bool fsync : {true, false}) b->servers[fsync] = start(fsync, false);
    b->batched = start(false, true);
    b->apart = start(false, false, kNeverTogether);
    b->always_together = start(false, false, 1);
    b->per_core = start(false, false, 0, OneCompletionQueuePerCore());
    return b;
  }();
  return *bench;
}

std::mutex latency_mutex;
std::map<std::string, std::vector<double>> latencies_us;

void Record(const std::string& name, const std::vector<double>& samples) {
  std::lock_guard lock(latency_mutex);
  auto& all = latencies_us[name];
  all.insert(all.end(), samples.begin(), samples.end());
}

std::string RunName(const char* what, int threads) {
  return std::string(what) + "/threads:" + std::to_string(threads);
}

void BM_FaissInProcess(benchmark::State& state) {
  Bench& b = World();
  omp_set_num_threads(1);  // the same per-search OpenMP bound the service uses
  index::SearchParams params;
  params.k = kK;
  params.nprobe = kNprobe;
  std::vector<double> samples;
  size_t q = state.thread_index() * 37;
  std::optional<bench::ProcessCpuPerIteration> cpu(std::in_place, state, "cpu_us_per_query");
  for (auto _ : state) {
    const auto begin = std::chrono::steady_clock::now();
    auto hits = b.index->Search(
        std::span<const float>(b.gallery.queries.data() + (q++ % 1000) * kDim, kDim), params);
    samples.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin)
            .count());
    if (!hits.ok()) state.SkipWithError("search failed");
  }
  cpu.reset();
  state.SetItemsProcessed(state.iterations());
  Record(RunName("faiss_in_process", state.threads()), samples);
}

// What every client sends: one query (zeros until a client fills it in) of the bench's collection.
v1::SearchRequest OneQueryRequest() {
  v1::SearchRequest request;
  request.set_collection(kCollection);
  request.set_k(kK);
  request.set_nprobe(kNprobe);
  request.add_queries()->mutable_values()->Resize(kDim, 0);
  return request;
}

// How a client reaches a server: a new channel with the given arguments.
using ChannelTo = std::function<std::shared_ptr<grpc::Channel>(const grpc::ChannelArguments&)>;

// Over loopback TCP to `port`, as a client on the same machine would.
ChannelTo Loopback(int port) {
  return [port](const grpc::ChannelArguments& args) {
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials(), args);
  };
}

// Single-query clients, each on a channel of its own from `channel_to`, recorded under `name`.
void RunClients(benchmark::State& state, const ChannelTo& channel_to, const std::string& name) {
  Bench& b = World();
  // One channel per client: separate HTTP/2 connections, as separate investigators would have.
  grpc::ChannelArguments args;
  args.SetInt("probity_client", state.thread_index());
  auto stub = v1::Search::NewStub(channel_to(args));
  v1::SearchRequest request = OneQueryRequest();
  auto* values = request.mutable_queries(0)->mutable_values();
  std::vector<double> samples;
  size_t q = state.thread_index() * 37;
  std::optional<bench::ProcessCpuPerIteration> cpu(std::in_place, state, "cpu_us_per_query");
  for (auto _ : state) {
    const float* query = b.gallery.queries.data() + (q++ % 1000) * kDim;
    std::copy(query, query + kDim, values->begin());
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + b.token);
    v1::SearchResponse response;
    const auto begin = std::chrono::steady_clock::now();
    grpc::Status status = stub->Search(&context, request, &response);
    samples.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin)
            .count());
    if (!status.ok()) {
      state.SkipWithError(status.error_message().c_str());
      break;
    }
  }
  cpu.reset();
  state.SetItemsProcessed(state.iterations());
  Record(RunName(name.c_str(), state.threads()), samples);
}

void RunClients(benchmark::State& state, int port, const std::string& name) {
  RunClients(state, Loopback(port), name);
}

void BM_ServiceEndToEnd(benchmark::State& state) {
  const bool fsync = state.range(0) != 0;
  RunClients(state, World().servers[fsync]->port(), fsync ? "service_fsync" : "service_no_fsync");
}

// One real answer of the service: what the floor's servers send back to every call.
const v1::SearchResponse& CannedResponse() {
  static const v1::SearchResponse* canned = [] {
    Bench& b = World();
    auto stub = v1::Search::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(b.servers[false]->port()),
                            grpc::InsecureChannelCredentials()));
    v1::SearchRequest request = OneQueryRequest();
    std::copy(b.gallery.queries.begin(), b.gallery.queries.begin() + kDim,
              request.mutable_queries(0)->mutable_values()->begin());
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + b.token);
    auto* response = new v1::SearchResponse;
    if (!stub->Search(&context, request, response).ok()) {
      std::fprintf(stderr, "cannot take a response for the gRPC floor\n");
      std::exit(1);
    }
    return response;
  }();
  return *canned;
}

// A canned-answer server (bench/common/canned_search_server.h) with the service's server
// options, running `work` on each request before answering.
bench::CannedSearchServer* StartFloorServer(bench::CannedSearchServer::Work work,
                                            bool callback_api = false) {
  auto server =
      bench::CannedSearchServer::Start(CannedResponse(), /*max_in_flight=*/256, 1 << 20,
                                       /*completion_queues=*/1, std::move(work), callback_api);
  if (server == nullptr) {
    std::fprintf(stderr, "cannot start a gRPC floor server\n");
    std::exit(1);
  }
  return server.release();
}

// gRPC's own floor: the same clients against a server that answers every call with the response
// a real search gave and does nothing else.
bench::CannedSearchServer& Floor() {
  static bench::CannedSearchServer* floor = StartFloorServer(nullptr);
  return *floor;
}

// Searches of FloorWithSearch's server that failed: a failed search costs less than a real one,
// so any failure voids the measurement (BM_GrpcFloorWithSearch reports it as an error).
std::atomic<int64_t> floor_search_failures{0};

// The floor plus the search: before its canned answer, the server runs the request's query
// through the same index, on one thread, as BM_FaissInProcess does. What this reaches is the
// ceiling for any gRPC service that searches this index; the service's distance below it is
// what warrants, ledger, routing and merging cost.
bench::CannedSearchServer& FloorWithSearch() {
  static bench::CannedSearchServer* floor = StartFloorServer([](const v1::SearchRequest& request) {
    omp_set_num_threads(1);
    index::SearchParams params;
    params.k = static_cast<int>(request.k());
    params.nprobe = static_cast<int>(request.nprobe());
    const auto& values = request.queries(0).values();
    auto hits = World().index->Search(std::span<const float>(values.data(), values.size()), params);
    if (!hits.ok()) floor_search_failures.fetch_add(1);
  });
  return *floor;
}

void BM_GrpcFloor(benchmark::State& state) { RunClients(state, Floor().port(), "grpc_floor"); }

// The floor on gRPC's callback API (the handler a reactor finished at once) instead of the
// synchronous API the service and Floor() use, same blocking clients: what a service built on
// the callback API would pay per call before any work.
bench::CannedSearchServer& CallbackFloor() {
  static bench::CannedSearchServer* floor = StartFloorServer(nullptr, /*callback_api=*/true);
  return *floor;
}

void BM_GrpcFloorCallbackServer(benchmark::State& state) {
  RunClients(state, CallbackFloor().port(), "grpc_floor_callback_server");
}

void RunFloorWithSearch(benchmark::State& state, const ChannelTo& channel_to,
                        const std::string& name) {
  const int64_t failures_before = floor_search_failures.load();
  RunClients(state, channel_to, name);
  if (state.thread_index() == 0 && floor_search_failures.load() != failures_before) {
    state.SkipWithError("the floor's searches failed: its rate is not a ceiling");
  }
}

void BM_GrpcFloorWithSearch(benchmark::State& state) {
  RunFloorWithSearch(state, Loopback(FloorWithSearch().port()), "grpc_floor_with_search");
}

// The same servers and clients on gRPC's in-process transport instead of loopback TCP: no
// sockets, no HTTP/2 framing, no poller wake-ups, but the same stubs, serialization, server
// threads and handlers. The service against the floor with the search on this transport is what
// Probity's own work costs; each against its loopback run is what the transport costs.
// `server`: the service's Server or a canned-answer server.
template <typename AnyServer>
ChannelTo InProcess(AnyServer& server) {
  return [&server](const grpc::ChannelArguments& args) { return server.InProcessChannel(args); };
}

void BM_GrpcFloorInProcessChannel(benchmark::State& state) {
  RunClients(state, InProcess(Floor()), "grpc_floor_in_process_channel");
}

void BM_GrpcFloorWithSearchInProcessChannel(benchmark::State& state) {
  RunFloorWithSearch(state, InProcess(FloorWithSearch()),
                     "grpc_floor_with_search_in_process_channel");
}

void BM_ServiceInProcessChannel(benchmark::State& state) {
  const bool fsync = state.range(0) != 0;
  RunClients(state, InProcess(*World().servers[fsync]),
             fsync ? "service_fsync_in_process_channel" : "service_no_fsync_in_process_channel");
}

// The same single-query clients on gRPC's callback API (bench/common/callback_clients.h):
// `clients` calls in flight, each client sending its next call from the last one's completion,
// without a thread per client; against the floor's and the service's servers in the same run as
// the blocking clients above, so the two kinds of load generator can be compared.
void RunCallbackClients(benchmark::State& state, int port, const char* name) {
  Bench& b = World();
  const int clients = static_cast<int>(state.range(0));
  std::vector<size_t> next_query(clients);
  for (int c = 0; c < clients; ++c) next_query[c] = static_cast<size_t>(c) * 37;
  bench::CallbackClients load(
      "127.0.0.1:" + std::to_string(port), clients, "Bearer " + b.token, OneQueryRequest(),
      [&](int client) { return b.gallery.queries.data() + (next_query[client]++ % 1000) * kDim; });
  // Every client's first call (its connection) before the timed loop.
  load.Start();
  for (int c = 0; c < clients; ++c) load.WaitForOne();
  load.TakeLatenciesMicros();
  {
    bench::ProcessCpuPerIteration cpu(state, "cpu_us_per_query");
    for (auto _ : state) load.WaitForOne();
  }
  load.Stop();
  if (load.failures() > 0) state.SkipWithError(load.first_error().c_str());
  state.SetItemsProcessed(state.iterations());
  Record(std::string(name) + "/clients:" + std::to_string(clients), load.TakeLatenciesMicros());
}

void BM_GrpcFloorCallbackClients(benchmark::State& state) {
  RunCallbackClients(state, Floor().port(), "grpc_floor_callback_clients");
}

void BM_ServiceCallbackClients(benchmark::State& state) {
  RunCallbackClients(state, World().servers[false]->port(), "service_no_fsync_callback_clients");
}

// The embedded server's shards searched in one call on the request's thread once every core
// has a search (search_together_from = cores) and, below that, the way measured faster
// (split_by_measurement): the defaults, `together` 1; against always apart on the fan-out pool
// (0) and always in one call (2); no fsync.
void BM_ServiceShardsTogether(benchmark::State& state) {
  Bench& b = World();
  switch (state.range(0)) {
    case 0:
      RunClients(state, b.apart->port(), "service_shards_apart");
      break;
    case 1:
      RunClients(state, b.servers[false]->port(), "service_shards_together");
      break;
    default:
      RunClients(state, b.always_together->port(), "service_shards_always_together");
  }
}

// The embedded server with one gRPC completion queue per core against gRPC's default of one
// (the servers' default); no fsync.
void BM_ServiceCompletionQueues(benchmark::State& state) {
  Bench& b = World();
  const bool per_core = state.range(0) != 0;
  RunClients(state, per_core ? b.per_core->port() : b.servers[false]->port(),
             per_core ? "service_queue_per_core" : "service_one_queue");
}

void BM_ServiceBatching(benchmark::State& state) {
  Bench& b = World();
  const bool batching = state.range(0) != 0;
  Server& server = batching ? *b.batched : *b.servers[false];
  // FAISS calls and shard searches that shared one during this run (every query searches
  // kShards shards); thread 0 reads the counters before the clients start and after they stop.
  const ShardCounters& shards = server.counters().shards;
  const uint64_t calls_before = shards.searches_run.load();
  const uint64_t coalesced_before = shards.searches_coalesced.load();
  RunClients(state, server.port(), batching ? "service_batching_on" : "service_batching_off");
  if (state.thread_index() == 0) {
    state.counters["faiss_calls"] = static_cast<double>(shards.searches_run.load() - calls_before);
    state.counters["coalesced"] =
        static_cast<double>(shards.searches_coalesced.load() - coalesced_before);
  }
}

// Every run: wall-clock rates (the clients' threads block), at least a second each.
void Timed(benchmark::internal::Benchmark* b) { b->UseRealTime()->MinTime(1.0); }
void OneEightAnd64Clients(benchmark::internal::Benchmark* b) {
  b->Threads(1)->Threads(8)->Threads(64)->Apply(Timed);
}
void OneAnd64Clients(benchmark::internal::Benchmark* b) {
  b->Threads(1)->Threads(64)->Apply(Timed);
}

BENCHMARK(BM_FaissInProcess)->Apply(OneEightAnd64Clients);
BENCHMARK(BM_ServiceEndToEnd)->ArgName("fsync")->Arg(1)->Arg(0)->Apply(OneEightAnd64Clients);
BENCHMARK(BM_GrpcFloor)->Apply(OneEightAnd64Clients);
BENCHMARK(BM_GrpcFloorCallbackServer)->Apply(OneEightAnd64Clients);
BENCHMARK(BM_GrpcFloorWithSearch)->Apply(OneEightAnd64Clients);
BENCHMARK(BM_GrpcFloorInProcessChannel)->Apply(OneAnd64Clients);
BENCHMARK(BM_GrpcFloorWithSearchInProcessChannel)->Apply(OneAnd64Clients);
BENCHMARK(BM_ServiceInProcessChannel)->ArgName("fsync")->Arg(0)->Arg(1)->Apply(OneAnd64Clients);
BENCHMARK(BM_GrpcFloorCallbackClients)->ArgName("clients")->Arg(1)->Arg(64)->Apply(Timed);
BENCHMARK(BM_ServiceCallbackClients)->ArgName("clients")->Arg(1)->Arg(64)->Apply(Timed);
BENCHMARK(BM_ServiceShardsTogether)
    ->ArgName("together")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Apply(OneAnd64Clients);
BENCHMARK(BM_ServiceCompletionQueues)->ArgName("per_core")->Arg(0)->Arg(1)->Apply(OneAnd64Clients);
BENCHMARK(BM_ServiceBatching)
    ->ArgName("batching")
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->Apply(Timed);

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()))];
}

}  // namespace
}  // namespace probity::service

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // As in the probity binary (common/abseil_deadlock_detection.h says why).
  probity::common::TurnOffAbseilDeadlockDetection();
  probity::service::World();  // build before timing anything
  probity::service::Floor();
  probity::service::FloorWithSearch();
  probity::service::CallbackFloor();
  benchmark::RunSpecifiedBenchmarks();
  std::printf("\n%-34s %10s %10s %10s\n", "latency (all runs)", "samples", "p50 us", "p99 us");
  for (const auto& [name, samples] : probity::service::latencies_us) {
    std::printf("%-34s %10zu %10.0f %10.0f\n", name.c_str(), samples.size(),
                probity::service::Percentile(samples, 0.50),
                probity::service::Percentile(samples, 0.99));
  }
  benchmark::Shutdown();
  std::error_code ec;
  std::filesystem::remove_all(probity::service::World().dir, ec);
  return 0;
}
