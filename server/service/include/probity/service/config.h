#pragma once

// The one configuration file of `probity serve` and `probity shard` (JSON). Relative paths are
// resolved against the data directory. Parsing is strict: an unknown key at any level, a value
// of the wrong type or an integer out of its field's range is an error that names the key's path
// (e.g. `config: unknown key "tls.require_client_crt"`), so a misspelling never silently falls
// back to a default.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/index/gpu.h"
#include "probity/service/batching_shard_backend.h"

namespace probity::service {

struct TlsConfig {
  std::filesystem::path cert_file;       // server certificate chain (PEM)
  std::filesystem::path key_file;        // server private key (PEM)
  std::filesystem::path client_ca_file;  // when set, client certificates are verified (mTLS)
  bool require_client_cert = false;
};

// A credential that opens the Admin or the Ledger service: a bearer token (stored only as its
// SHA-256) or a verified TLS client identity (certificate common name).
struct RoleMember {
  std::string name;
  std::string token_sha256;  // lowercase hex
  std::string tls_identity;
};

struct CollectionConfig {
  std::string name;
  std::filesystem::path generation_dir;
  std::vector<int> shards;  // shard servers only: which shards to hold (empty = all)
};

struct LedgerConfig {
  std::filesystem::path dir = "ledger";
  std::string origin = "probity/ledger";
  std::filesystem::path signing_key = "ledger/signing-key.pem";
  bool fsync = true;
  uint64_t max_segment_bytes = 64ull << 20;
};

// Dynamic batching of the shard searches this process runs on its own shards (embedded server,
// shard server): concurrent searches of one shard with the same nprobe share one FAISS call.
// Off when the "batching" object is absent or says "enabled": false.
struct BatchingConfig {
  bool enabled = false;
  int max_batch_queries = 256;  // queries per FAISS call, summed over the requests sharing it
  int max_wait_us = 0;          // how long a call may wait to fill up; 0 = never wait
  // Hand the shard to the next call before waking the finished call's requests
  // (BatchingOptions::next_call_first); off: the requests first.
  bool next_call_first = false;
  // Each search waits on a signal of its own and an answered one returns without the batcher's
  // lock (BatchingOptions::direct_wakeups).
  bool direct_wakeups = false;
  // (Calls of one shard in flight at once follow gpu.copies_per_shard: BatchingOptionsFor.)
};

// "report_http": the oversight report over HTTPS for auditors (absent: off). The listener uses
// the server's `tls` certificate and checks client certificates against `tls.client_ca_file`;
// the caller's role comes from the same `auditors` list as the gRPC Ledger API.
struct ReportHttpConfig {
  std::string address;  // host:port (port 0 picks a free port)
};

// "metrics": a Prometheus text endpoint (GET /metrics) on its own address; off when absent.
// Metrics carry no personal data, but they show when and how much the service searches, so
// the endpoint belongs on loopback or a monitoring network, never on a public one.
struct MetricsConfig {
  std::string address;  // "IP:port" ("[::1]:port" for IPv6); port 0 picks a free port
  // A non-loopback address is refused unless the operator says so here (Kubernetes: the pod
  // IP, reachable only by the scraper through a network policy).
  bool allow_non_loopback = false;
};

struct ServerConfig {
  std::filesystem::path data_dir;
  std::string listen = "127.0.0.1:7443";  // port 0 picks a free port
  std::string deployment;                 // the warrant audience this deployment accepts
  std::filesystem::path jwks_file = "jwks.json";
  std::filesystem::path revocation_file;  // optional
  int key_reload_seconds = 5;             // how often changed JWKS/revocations are picked up
  // Serving generations chosen by the Admin API, erasure journals and generations written
  // after AddVectors.
  std::filesystem::path state_dir = "state";
  // Warrant policy (see probity::warrant::Policy).
  int64_t clock_skew_seconds = 60;
  int64_t max_warrant_lifetime_hours = 24 * 30;
  uint64_t max_token_bytes = 8192;
  LedgerConfig ledger;
  std::vector<CollectionConfig> collections;
  std::vector<std::string> shard_servers;  // router mode: addresses of `probity shard` servers
  std::optional<TlsConfig> tls;
  std::optional<TlsConfig> shard_client_tls;  // router -> shard (CA, and client cert for mTLS)
  // Plaintext is accepted only for --demo or a loopback listen address, never on a network.
  bool plaintext = false;
  // Set only by the --demo flag of `probity serve`, never from the file (a "demo" key is
  // refused): it allows plaintext and ledger.fsync = false on any listen address.
  bool demo = false;
  std::vector<RoleMember> operators;
  std::vector<RoleMember> auditors;
  // Shard servers: the routers allowed to call the Shard service (by TLS client identity or
  // token). A shard server answers any caller only when this is empty and it serves plaintext
  // on loopback; otherwise it refuses to start without it.
  std::vector<RoleMember> routers;
  int max_in_flight = 64;          // concurrent searches; more get RESOURCE_EXHAUSTED
  int omp_threads_per_search = 1;  // FAISS OpenMP threads per shard search
  int fanout_threads = 0;          // shard searches at once; 0 = 2 x cores
  // Searches running at once from which an embedded server searches all of a search's local
  // shards in one call on its own thread (one coarse assignment, no hand-off) instead of in
  // parallel on the fan-out pool; 0 = the number of cores.
  int search_together_from = 0;
  // Below that, a search's local shards go the way that has been faster for the collection, in
  // parallel on the pool or in one call (measured: SplitChoice); false: always in parallel.
  bool split_by_measurement = true;
  // gRPC completion queues the server takes calls through; 0 = gRPC's default of one. At most
  // max_in_flight (service::ApplyServerOptions).
  int grpc_completion_queues = 0;
  int default_nprobe = 16;
  int shard_deadline_ms = 5000;  // per attempt on one shard replica (the caller's deadline too)
  // Router: a shard search not answered after the hedge delay (observed latency, bounded by
  // these) is also sent to another replica; hedges per 100 first attempts at most
  // shard_hedge_budget_percent. A failing replica is passed over, and its server reconnected,
  // within shard_reconnect_backoff_ms.
  int shard_hedge_min_ms = 10;
  int shard_hedge_max_ms = 1000;
  int shard_hedge_budget_percent = 20;
  int shard_reconnect_backoff_ms = 1000;
  int drain_seconds = 10;  // SIGTERM: how long in-flight calls may finish
  // Refusals of callers without a verified warrant recorded per second, all callers together
  // and per caller (TLS identity, else peer address); bursts of 5 s worth. Refusals of a
  // verified warrant are always recorded.
  double refusal_rate_per_second = 20;
  double refusal_rate_per_caller_per_second = 5;
  int refusal_callers_tracked = 4096;  // per-caller buckets kept; more share one bucket
  // Request bounds, checked before a warrant's budget is touched; the gRPC receive limit is
  // derived from them and the largest dimension served.
  int max_queries_per_request = 1024;
  int max_justification_bytes = 2048;
  BatchingConfig batching;
  // "gpu": the GPUs this server's shards are placed on (absent: CPU). A server configured for
  // GPUs that it cannot use refuses to start; it never falls back to the CPU.
  std::optional<index::GpuOptions> gpu;
  std::optional<ReportHttpConfig> report_http;
  std::optional<MetricsConfig> metrics;
};

absl::StatusOr<ServerConfig> ParseConfig(const std::string& json_text,
                                         const std::filesystem::path& data_dir_default);
absl::StatusOr<ServerConfig> LoadConfig(const std::filesystem::path& file);
// Everything but `demo`, which belongs to the command line and not to a file.
std::string ConfigToJson(const ServerConfig& config);

// Checks the transport rules: TLS unless plaintext on loopback or under --demo (config.demo);
// roles never share a credential.
absl::Status ValidateConfig(const ServerConfig& config);
// The batcher's options for this config's "batching" section. A GPU shard with several copies
// (gpu.copies_per_shard) runs that many calls at once, one per copy.
BatchingOptions BatchingOptionsFor(const ServerConfig& config);

// "metrics": a literal IP address and port, on loopback unless allow_non_loopback says so.
absl::Status ValidateMetricsConfig(const MetricsConfig& metrics);

// `path` if absolute, else data_dir / path.
std::filesystem::path Resolve(const ServerConfig& config, const std::filesystem::path& path);

bool IsLoopbackAddress(const std::string& host_port);

}  // namespace probity::service
