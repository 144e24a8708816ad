#include "probity/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "probity/common/file_read.h"
#include "probity/index/blas_threads.h"
#include "probity/index/private_files.h"
#include "probity/service/admin_service.h"
#include "probity/service/batching_shard_backend.h"
#include "probity/service/call_gate.h"
#include "probity/service/collection_state.h"
#include "probity/service/grpc_server_options.h"
#include "probity/service/ledger_service.h"
#include "probity/service/local_route.h"
#include "probity/service/metrics.h"
#include "probity/service/report_http.h"
#include "probity/service/review_service.h"
#include "probity/service/shard_service.h"

namespace probity::service {
namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerConfig& config) {
  if (!config.tls) {
    spdlog::warn("serving plaintext on {} ({})", config.listen,
                 config.demo ? "--demo" : "loopback only");
    return grpc::InsecureServerCredentials();
  }
  auto cert = common::ReadFileToString(Resolve(config, config.tls->cert_file));
  if (!cert.ok()) return cert.status();
  auto key = common::ReadFileToString(Resolve(config, config.tls->key_file));
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!config.tls->client_ca_file.empty()) {
    auto ca = common::ReadFileToString(Resolve(config, config.tls->client_ca_file));
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request =
        config.tls->require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                        : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ShardChannelCredentials(
    const ServerConfig& config) {
  if (!config.shard_client_tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  const TlsConfig& tls = *config.shard_client_tls;
  if (!tls.client_ca_file.empty()) {
    auto ca = common::ReadFileToString(Resolve(config, tls.client_ca_file));
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  if (!tls.cert_file.empty()) {
    auto cert = common::ReadFileToString(Resolve(config, tls.cert_file));
    if (!cert.ok()) return cert.status();
    auto key = common::ReadFileToString(Resolve(config, tls.key_file));
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

// The collection's serving generation: the one last swapped in by the Admin API, if any.
std::filesystem::path ServingGenerationDir(const ServerConfig& config, const CollectionState& state,
                                           const CollectionConfig& collection) {
  std::ifstream in(state.GenerationFile(collection.name));
  std::string line;
  if (in && std::getline(in, line) && !line.empty()) return line;
  return Resolve(config, collection.generation_dir);
}

// The catalog of a server holding shards: on the configured GPUs, or on the CPU when the
// config names none. A GPU config that cannot be honoured (CPU-only build, no GPU, unknown
// device) refuses to start instead of serving from the CPU.
absl::StatusOr<std::unique_ptr<Catalog>> MakeCatalog(const ServerConfig& config) {
  if (!config.gpu) return std::make_unique<Catalog>();
  auto gpu = index::GpuRuntime::Create(*config.gpu);
  if (!gpu.ok()) {
    return absl::Status(gpu.status().code(),
                        absl::StrCat("config \"gpu\": ", gpu.status().message()));
  }
  spdlog::info("GPUs {}: {} cop{} of each shard, threads wait for them: {}",
               absl::StrJoin(config.gpu->devices, ", "), config.gpu->copies_per_shard,
               config.gpu->copies_per_shard == 1 ? "y" : "ies",
               index::GpuHostWaitName(config.gpu->host_wait));
  return std::make_unique<Catalog>(*std::move(gpu));
}

// Refuses to start when another local user could read a gallery, the state (erasure
// journals, serving generations) or a private key: they could search the gallery offline or
// impersonate the service. A missing state dir is created owner-only.
absl::Status CheckPrivateFiles(const ServerConfig& config, const CollectionState& state,
                               const std::vector<std::filesystem::path>& key_files) {
  if (!std::filesystem::exists(state.state_dir)) {
    if (auto status = index::CreatePrivateDirectories(state.state_dir); !status.ok()) {
      return status;
    }
  }
  if (auto status = index::CheckOwnerOnly(state.state_dir); !status.ok()) return status;
  for (const CollectionConfig& collection : config.collections) {
    const std::filesystem::path dir = ServingGenerationDir(config, state, collection);
    // A missing generation is reported by the load that follows, with its own message.
    if (auto status = index::CheckOwnerOnly(dir); !status.ok() && !absl::IsNotFound(status)) {
      return status;
    }
  }
  for (const std::filesystem::path& key : key_files) {
    if (auto status = index::CheckOwnerOnly(key); !status.ok() && !absl::IsNotFound(status)) {
      return status;
    }
  }
  return absl::OkStatus();
}

// The private keys a server reads: TLS keys, and the ledger's signing key on a router.
std::vector<std::filesystem::path> PrivateKeyFiles(const ServerConfig& config, bool has_ledger) {
  std::vector<std::filesystem::path> keys;
  if (has_ledger && !config.ledger.signing_key.empty()) {
    keys.push_back(Resolve(config, config.ledger.signing_key));
  }
  for (const auto* tls : {&config.tls, &config.shard_client_tls}) {
    if (*tls && !(*tls)->key_file.empty()) keys.push_back(Resolve(config, (*tls)->key_file));
  }
  return keys;
}

absl::Status LoadCatalog(const ServerConfig& config, const CollectionState& state,
                         Catalog& catalog) {
  if (!config.collections.empty()) {
    // This process searches shards: OpenBLAS's own pool would only spin beside its searches.
    const index::BlasThreading blas = index::UseOneBlasThreadForServing();
    if (blas.changed) spdlog::info("{}", blas.description);
  }
  for (const CollectionConfig& collection : config.collections) {
    auto loaded = Catalog::LoadCollection(
        collection.name, ServingGenerationDir(config, state, collection), collection.shards,
        state.ErasureJournal(collection.name), catalog.gpu());
    if (!loaded.ok()) return loaded.status();
    for (int shard : (*loaded)->held_shards) {
      const int device = (*loaded)->index->ShardDevice(shard);
      if (device >= 0)
        spdlog::info("collection {}: shard {} on GPU {}", collection.name, shard, device);
    }
    spdlog::info("collection {}: generation {}, {} vectors, {} shards (holding {})",
                 collection.name, (*loaded)->generation, (*loaded)->index->TotalSize(),
                 (*loaded)->index->num_shards(), (*loaded)->held_shards.size());
    catalog.Put(*loaded);
  }
  return absl::OkStatus();
}

// Asks a shard server what it holds and adds it to the routes. A server that is down leaves
// its shards without that replica (searches then fail, or answer partially if allowed) until a
// later attempt reaches it.
absl::Status DiscoverShardServer(const std::string& address,
                                 const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                 absl::Duration timeout, Router& router, Metrics* metrics) {
  auto channel = MakeShardChannel(address, credentials, router.options().max_reconnect_backoff);
  auto stub = v1::Shard::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(true);
  v1::ShardInfoResponse info;
  grpc::Status status = stub->Info(&context, v1::ShardInfoRequest(), &info);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("shard server ", address, " did not answer: ", status.error_message()));
  }
  std::shared_ptr<ShardBackend> backend = MakeRemoteShardBackend(address, channel);
  if (metrics != nullptr) backend = metrics->Observe(std::move(backend));
  for (const v1::HeldShard& held : info.shards()) {
    auto metric = index::ParseMetric(held.metric());
    if (!metric.ok()) return metric.status();
    if (auto added = router.AddReplica(held.collection(), *metric, static_cast<int>(held.dim()),
                                       static_cast<int>(held.shards_total()),
                                       static_cast<int>(held.shard()), backend);
        !added.ok()) {
      return added;
    }
  }
  spdlog::info("shard server {} holds {} shards", address, info.shards_size());
  return absl::OkStatus();
}

// One backend searches every shard this process holds; batching wraps it when configured.
std::shared_ptr<ShardBackend> MakeLocalShards(const ServerConfig& config, const Catalog& catalog,
                                              ShardCounters& counters) {
  std::shared_ptr<ShardBackend> local =
      MakeLocalShardBackend(catalog, config.omp_threads_per_search, counters);
  if (!config.batching.enabled) return local;
  return MakeBatchingShardBackend(std::move(local), BatchingOptionsFor(config), counters);
}

class ServerImpl : public Server {
 public:
  int port() const override { return port_; }
  std::shared_ptr<grpc::Channel> InProcessChannel(const grpc::ChannelArguments& args) override {
    return grpc_server_->InProcessChannel(args);
  }
  int report_http_port() const override {
    return report_http_ != nullptr ? report_http_->port() : 0;
  }

  void Shutdown(absl::Duration drain) override {
    std::call_once(shutdown_once_, [&] {
      if (auto* health = grpc_server_->GetHealthCheckService()) {
        health->SetServingStatus(false);
      }
      spdlog::info("draining: refusing new calls, waiting up to {} for calls in flight",
                   absl::FormatDuration(drain));
      grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    });
  }

  void Wait() override { grpc_server_->Wait(); }

  // Every `period`: picks up a changed JWKS or revocation list without an operator call, so a
  // revocation takes effect within `period`, and retries the shard servers not reached yet.
  void StartKeyReloadAndShardRetry(absl::Duration period) {
    periodic_thread_ = std::thread([this, period] {
      std::unique_lock lock(periodic_mutex_);
      while (!periodic_cv_.wait_for(lock, absl::ToChronoSeconds(period),
                                    [this] { return stopping_; })) {
        if (auto status = verifier_->ReloadIfChanged(); !status.ok()) {
          spdlog::error("warrant keys or revocations not reloaded: {}",
                        std::string(status.message()));
        }
        RetryUnreachedShardServers();
      }
    });
  }
  const ServiceCounters& counters() const override { return counters_; }

  void RetryUnreachedShardServers() {
    std::vector<std::string> still_unreached;
    for (const std::string& address : UnreachedShardServers()) {
      if (!DiscoverShardServer(address, shard_credentials_, absl::Seconds(1), *router_,
                               metrics_.get())
               .ok()) {
        still_unreached.push_back(address);
      }
    }
    std::lock_guard lock(unreached_mutex_);
    unreached_shard_servers_ = std::move(still_unreached);
  }

  std::vector<std::string> UnreachedShardServers() const {
    std::lock_guard lock(unreached_mutex_);
    return unreached_shard_servers_;
  }

  // Serves the metrics endpoint when the config has "metrics", reading what this process has.
  absl::Status StartMetrics(const ServerConfig& config) {
    if (metrics_ == nullptr) return absl::OkStatus();
    Metrics::Sources sources;
    sources.counters = search_service_ != nullptr ? &counters_ : nullptr;
    sources.audit = audit_.get();
    sources.ledger = ledger_.get();
    sources.router = router_.get();
    sources.catalog = catalog_.get();
    if (!config.shard_servers.empty()) {
      sources.shard_servers = [this, servers = config.shard_servers] {
        const std::vector<std::string> unreached = UnreachedShardServers();
        std::vector<std::pair<std::string, bool>> states;
        for (const std::string& server : servers) {
          states.emplace_back(
              server, std::find(unreached.begin(), unreached.end(), server) == unreached.end());
        }
        return states;
      };
    }
    metrics_->SetSources(std::move(sources));
    return metrics_->Listen(config.metrics->address);
  }
  int metrics_port() const override { return metrics_ != nullptr ? metrics_->port() : 0; }

  ~ServerImpl() override {
    if (periodic_thread_.joinable()) {
      {
        std::lock_guard lock(periodic_mutex_);
        stopping_ = true;
      }
      periodic_cv_.notify_all();
      periodic_thread_.join();
    }
    if (grpc_server_ != nullptr) {
      Shutdown(absl::ZeroDuration());
      grpc_server_->Wait();
    }
  }

  // The largest dimension this server serves (or routes to), which sizes the largest request
  // it accepts; 4096 when no collection is known yet (a router whose shard servers are down).
  int LargestDimension() const {
    int largest = 0;
    if (catalog_ != nullptr) {
      for (const auto& collection : catalog_->List()) {
        largest = std::max(largest, collection->index->spec().dim);
      }
    }
    if (router_ != nullptr) {
      for (const std::string& name : router_->Collections()) {
        if (auto route = router_->Route(name)) largest = std::max(largest, route->dim);
      }
    }
    return largest > 0 ? largest : 4096;
  }

  // Registers each service (with its full name, e.g. "probity.v1.Admin") behind `gate`, so that
  // no call reaches a handler without passing the gate.
  absl::Status Build(const ServerConfig& config, std::unique_ptr<CallGate> gate,
                     const std::vector<std::pair<grpc::Service*, std::string>>& services) {
    gate_ = std::move(gate);
    auto credentials = ServerCredentials(config);
    if (!credentials.ok()) return credentials.status();
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config.listen, *credentials, &port_);
    for (const auto& [service, name] : services) {
      auto guarded = gate_->Guard(*service, name);
      if (!guarded.ok()) return guarded.status();
      builder.RegisterService(guarded->get());
      guarded_services_.push_back(std::move(*guarded));
    }
    ApplyServerOptions(config.max_in_flight,
                       MaxSearchMessageBytes(config.max_queries_per_request, LargestDimension(),
                                             config.max_justification_bytes),
                       builder, config.grpc_completion_queues);
    grpc_server_ = builder.BuildAndStart();
    if (grpc_server_ == nullptr || port_ == 0) {
      return absl::UnavailableError("cannot listen on " + config.listen);
    }
    grpc_server_->GetHealthCheckService()->SetServingStatus(true);
    return absl::OkStatus();
  }

  ServerConfig config_;
  ServiceCounters counters_;
  std::unique_ptr<Catalog> catalog_;
  std::shared_ptr<ShardBackend> local_shards_;  // null in router mode
  std::unique_ptr<Router> router_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<warrant::Verifier> verifier_;
  warrant::BudgetTracker budgets_;
  std::unique_ptr<SearchServiceImpl> search_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<LedgerServiceImpl> ledger_service_;
  std::unique_ptr<ReviewServiceImpl> review_service_;
  std::unique_ptr<ReportHttpServer> report_http_;  // `report_http`: auditors' HTTPS report
  std::unique_ptr<ShardServiceImpl> shard_service_;
  std::unique_ptr<CallGate> gate_;
  std::vector<std::unique_ptr<grpc::Service>> guarded_services_;  // what gRPC serves
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  std::once_flag shutdown_once_;
  std::shared_ptr<grpc::ChannelCredentials> shard_credentials_;
  mutable std::mutex unreached_mutex_;  // the maintenance thread writes, a metrics scrape reads
  std::vector<std::string> unreached_shard_servers_;
  std::thread periodic_thread_;
  std::mutex periodic_mutex_;
  std::condition_variable periodic_cv_;
  bool stopping_ = false;
  // Last, so that it stops serving scrapes before anything it reads is destroyed.
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::StartRouter(ServerConfig config,
                                                            Overrides overrides) {
  if (auto status = ValidateConfig(config); !status.ok()) return status;
  if (config.deployment.empty()) {
    return absl::InvalidArgumentError("config: \"deployment\" (the warrant audience) is required");
  }
  auto server = std::make_unique<ServerImpl>();
  server->config_ = config;
  if (config.metrics) server->metrics_ = std::make_unique<Metrics>();
  const CollectionState state{Resolve(config, config.state_dir)};
  if (auto status = CheckPrivateFiles(config, state, PrivateKeyFiles(config, true)); !status.ok()) {
    return status;
  }

  if (overrides.ledger) {
    server->ledger_ = std::move(overrides.ledger);
  } else {
    ledger::Options options;
    options.dir = Resolve(config, config.ledger.dir);
    options.origin = config.ledger.origin;
    options.signing_key = Resolve(config, config.ledger.signing_key);
    options.max_segment_bytes = config.ledger.max_segment_bytes;
    options.fsync = config.ledger.fsync;
    if (server->metrics_ != nullptr) options.observer = server->metrics_->ledger_observer();
    auto ledger = ledger::Ledger::Open(options);
    if (!ledger.ok()) return ledger.status();
    server->ledger_ = std::move(*ledger);
  }
  server->audit_ = std::make_unique<AuditLog>(
      *server->ledger_,
      RefusalLimits{config.refusal_rate_per_second, config.refusal_rate_per_caller_per_second,
                    static_cast<size_t>(config.refusal_callers_tracked)});
  // Only a warrant still valid can spend again, and it searched within its lifetime; the day's
  // margin covers entry stamps that are out of order or a clock stepped back.
  const absl::Time budgets_since = absl::Now() - absl::Hours(config.max_warrant_lifetime_hours) -
                                   2 * absl::Seconds(config.clock_skew_seconds) - absl::Hours(24);
  if (auto status = server->audit_->RestoreBudgets(server->budgets_, budgets_since); !status.ok()) {
    return status;
  }

  warrant::Verifier::Options verifier_options;
  verifier_options.policy.audience = config.deployment;
  verifier_options.policy.clock_skew = absl::Seconds(config.clock_skew_seconds);
  verifier_options.policy.max_lifetime = absl::Hours(config.max_warrant_lifetime_hours);
  verifier_options.policy.max_token_bytes = config.max_token_bytes;
  verifier_options.jwks_file = Resolve(config, config.jwks_file);
  verifier_options.revocation_file = Resolve(config, config.revocation_file);
  auto verifier = warrant::Verifier::Create(verifier_options);
  if (!verifier.ok()) return verifier.status();
  server->verifier_ = std::move(*verifier);

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Local shard searches are CPU work: about the cores. Remote ones mostly wait on the network,
  // and batched ones wait for their batch (the batcher bounds the FAISS calls), so a fan-out
  // thread per waiting search lets batches fill.
  const bool waits = !config.shard_servers.empty() || config.batching.enabled;
  const int fanout_threads = config.fanout_threads > 0 ? config.fanout_threads
                             : waits                   ? 2 * config.max_in_flight
                                                       : 2 * cores;
  RoutingOptions routing;
  routing.hedge = {absl::Milliseconds(config.shard_hedge_min_ms),
                   absl::Milliseconds(config.shard_hedge_max_ms),
                   config.shard_hedge_budget_percent};
  routing.max_reconnect_backoff = absl::Milliseconds(config.shard_reconnect_backoff_ms);
  routing.search_together_from = config.search_together_from;
  routing.split_by_measurement = config.split_by_measurement;
  server->router_ = std::make_unique<Router>(absl::Milliseconds(config.shard_deadline_ms),
                                             fanout_threads, routing);
  if (config.shard_servers.empty()) {
    auto catalog = MakeCatalog(config);
    if (!catalog.ok()) return catalog.status();
    server->catalog_ = *std::move(catalog);
    if (auto status = LoadCatalog(config, state, *server->catalog_); !status.ok()) return status;
    server->local_shards_ = MakeLocalShards(config, *server->catalog_, server->counters_.shards);
    if (server->metrics_ != nullptr) {
      server->local_shards_ = server->metrics_->Observe(server->local_shards_);
    }
    for (const auto& collection : server->catalog_->List()) {
      server->router_->SetRoute(LocalRoute(*collection, server->local_shards_));
    }
  } else if (config.gpu) {
    return absl::InvalidArgumentError(
        "config: \"gpu\" is set on a router that holds no shards; set it on the shard servers");
  } else {
    auto credentials = ShardChannelCredentials(config);
    if (!credentials.ok()) return credentials.status();
    server->shard_credentials_ = *credentials;
    for (const std::string& address : config.shard_servers) {
      absl::Status status =
          DiscoverShardServer(address, *credentials, absl::Milliseconds(config.shard_deadline_ms),
                              *server->router_, server->metrics_.get());
      if (absl::IsFailedPrecondition(status)) return status;
      if (!status.ok()) {
        spdlog::error("{}; retrying in the background", std::string(status.message()));
        server->unreached_shard_servers_.push_back(address);
      }
    }
  }

  server->search_service_ = std::make_unique<SearchServiceImpl>(
      *server->verifier_, server->budgets_, *server->audit_, *server->router_, server->counters_,
      SearchServiceImpl::Options{config.max_in_flight, config.default_nprobe,
                                 config.max_queries_per_request, config.max_justification_bytes,
                                 server->metrics_.get()});
  AdminServiceImpl::Deps deps;
  deps.catalog = server->catalog_.get();
  deps.router = server->router_.get();
  deps.audit = server->audit_.get();
  deps.verifier = server->verifier_.get();
  deps.counters = &server->counters_;
  deps.state = state;
  deps.data_dir = config.data_dir;
  deps.local_shards = server->local_shards_;
  server->admin_service_ = std::make_unique<AdminServiceImpl>(deps);
  server->ledger_service_ = std::make_unique<LedgerServiceImpl>(*server->ledger_);
  server->review_service_ =
      std::make_unique<ReviewServiceImpl>(*server->verifier_, *server->audit_);
  auto gate = std::make_unique<CallGate>(
      CallGate::Members{config.operators, config.auditors, config.routers}, server->audit_.get(),
      server->metrics_.get());
  if (auto status = server->StartMetrics(config); !status.ok()) return status;
  if (auto status =
          server->Build(config, std::move(gate),
                        {{server->search_service_.get(), v1::Search::service_full_name()},
                         {server->admin_service_.get(), v1::Admin::service_full_name()},
                         {server->ledger_service_.get(), v1::Ledger::service_full_name()},
                         {server->review_service_.get(), v1::ReviewService::service_full_name()}});
      !status.ok()) {
    return status;
  }
  if (config.report_http) {
    auto report_http = ReportHttpServer::Start(config, *server->audit_);
    if (!report_http.ok()) return report_http.status();
    server->report_http_ = std::move(*report_http);
  }
  server->StartKeyReloadAndShardRetry(absl::Seconds(std::max(1, config.key_reload_seconds)));
  spdlog::info("probity serving on port {} ({} ledger entries, deployment {})", server->port(),
               server->ledger_->Size(), config.deployment);
  return std::unique_ptr<Server>(std::move(server));
}

absl::StatusOr<std::unique_ptr<Server>> Server::StartShard(ServerConfig config) {
  if (auto status = ValidateConfig(config); !status.ok()) return status;
  auto server = std::make_unique<ServerImpl>();
  server->config_ = config;
  if (config.metrics) server->metrics_ = std::make_unique<Metrics>();
  auto catalog = MakeCatalog(config);
  if (!catalog.ok()) return catalog.status();
  server->catalog_ = *std::move(catalog);
  const CollectionState state{Resolve(config, config.state_dir)};
  if (auto status = CheckPrivateFiles(config, state, PrivateKeyFiles(config, false));
      !status.ok()) {
    return status;
  }
  if (auto status = LoadCatalog(config, state, *server->catalog_); !status.ok()) return status;
  CallGate::Members members{config.operators, config.auditors, std::nullopt};
  if (!config.routers.empty()) {
    members.routers = config.routers;
  } else if (config.tls || !IsLoopbackAddress(config.listen)) {
    return absl::InvalidArgumentError(
        "config: a shard server off loopback needs \"routers\": shard servers skip the warrant "
        "check, so only the routers may call them");
  }
  server->local_shards_ = MakeLocalShards(config, *server->catalog_, server->counters_.shards);
  if (server->metrics_ != nullptr) {
    server->local_shards_ = server->metrics_->Observe(server->local_shards_);
  }
  server->shard_service_ = std::make_unique<ShardServiceImpl>(
      *server->catalog_, server->local_shards_, server->counters_.shards, state.state_dir);
  if (auto status = server->StartMetrics(config); !status.ok()) return status;
  // A shard server has no ledger: refused calls are logged only.
  if (auto status = server->Build(
          config, std::make_unique<CallGate>(std::move(members), nullptr, server->metrics_.get()),
          {{server->shard_service_.get(), v1::Shard::service_full_name()}});
      !status.ok()) {
    return status;
  }
  spdlog::info("probity shard server on port {}", server->port());
  return std::unique_ptr<Server>(std::move(server));
}

void BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void ServeUntilTerminated(Server& server, absl::Duration drain) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("signal {}: shutting down", received);
  server.Shutdown(drain);
  server.Wait();
}

}  // namespace probity::service
