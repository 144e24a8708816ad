#include "probity/service/metrics.h"

#include <civetweb.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <array>
#include <exception>
#include <future>
#include <limits>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "probity/ledger/commit_observer.h"
#include "probity/ledger/ledger.h"
#include "probity/service/audit_log.h"
#include "probity/service/catalog.h"
#include "probity/service/router.h"
#include "probity/service/search_service.h"
#include "probity/service/shard_backend.h"
#include "probity/warrant/warrant.h"

namespace probity::service {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Searches take milliseconds on CPU shards and up to the shard deadline (5 s by default) when a
// shard server hangs; the ledger's fsync takes tens of microseconds on NVMe to tens of
// milliseconds on a busy disk.
const prometheus::Histogram::BucketBoundaries kSearchSecondsBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const prometheus::Histogram::BucketBoundaries kFsyncSecondsBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
const prometheus::Histogram::BucketBoundaries kGroupCommitEntriesBuckets = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

// Codes the service refuses with besides the warrant library's: the search service's own, the
// call gate's, and a search over max_in_flight.
constexpr std::array<std::string_view, 5> kServiceRefusalCodes = {
    "invalid_request", "unknown_collection", Metrics::kCallerUnauthenticated,
    Metrics::kCallerNotPermitted, Metrics::kServerBusy};
constexpr std::string_view kOtherRefusalCode = "other";

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

class LedgerCommitMetrics final : public ledger::CommitObserver {
 public:
  explicit LedgerCommitMetrics(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)),
        appends_(prometheus::BuildCounter()
                     .Name("probity_ledger_appends_total")
                     .Help("Ledger entries made durable since the process started")
                     .Register(*registry_)
                     .Add({})),
        append_failures_(prometheus::BuildCounter()
                             .Name("probity_ledger_append_failures_total")
                             .Help("Ledger appends that failed (the entry is not in the log)")
                             .Register(*registry_)
                             .Add({})),
        fsync_seconds_(prometheus::BuildHistogram()
                           .Name("probity_ledger_fsync_duration_seconds")
                           .Help("Time to make one group commit durable (fdatasync)")
                           .Register(*registry_)
                           .Add({}, kFsyncSecondsBuckets)),
        group_commit_entries_(prometheus::BuildHistogram()
                                  .Name("probity_ledger_group_commit_entries")
                                  .Help("Entries per group commit (appends sharing one fsync)")
                                  .Register(*registry_)
                                  .Add({}, kGroupCommitEntriesBuckets)) {}

  void OnGroupCommit(const ledger::GroupCommitStats& stats) override {
    appends_.Increment(static_cast<double>(stats.entries));
    fsync_seconds_.Observe(absl::ToDoubleSeconds(stats.sync_time));
    group_commit_entries_.Observe(static_cast<double>(stats.entries));
  }
  void OnAppendFailed() override { append_failures_.Increment(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;  // owns the metrics below
  prometheus::Counter& appends_;
  prometheus::Counter& append_failures_;
  prometheus::Histogram& fsync_seconds_;
  prometheus::Histogram& group_commit_entries_;
};

// Counts a backend's shard searches by result; everything else passes through.
class ObservedShardBackend final : public ShardBackend {
 public:
  ObservedShardBackend(std::shared_ptr<ShardBackend> inner, prometheus::Counter& ok,
                       prometheus::Counter& error)
      : inner_(std::move(inner)), ok_(ok), error_(error) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time deadline) override {
    auto answer = inner_->Search(query, deadline);
    (answer.ok() ? ok_ : error_).Increment();
    return answer;
  }
  // Forwarded, so that a remote replica keeps its asynchronous path (hedging, cancellation)
  // when metrics are on; a backend that searches on the caller's thread returns nullptr here
  // and the router calls Search() above instead.
  std::shared_ptr<ShardCall> StartSearch(const ShardQuery& query, absl::Time deadline,
                                         ShardSearchDone done) override {
    return inner_->StartSearch(
        query, deadline,
        [&ok = ok_, &error = error_, done = std::move(done)](absl::StatusOr<ShardAnswer> answer) {
          (answer.ok() ? ok : error).Increment();
          done(std::move(answer));
        });
  }
  bool SearchesShardsTogether() const override { return inner_->SearchesShardsTogether(); }
  absl::StatusOr<std::vector<ShardAnswer>> SearchShards(const ShardQuery& query,
                                                        std::span<const int> shards,
                                                        absl::Time deadline) override {
    auto answers = inner_->SearchShards(query, shards, deadline);
    (answers.ok() ? ok_ : error_).Increment(static_cast<double>(shards.size()));
    return answers;
  }
  std::string Describe() const override { return inner_->Describe(); }
  absl::StatusOr<int64_t> Erase(const std::string& collection, const std::vector<int64_t>& ids,
                                const std::string& reason) override {
    return inner_->Erase(collection, ids, reason);
  }

 private:
  std::shared_ptr<ShardBackend> inner_;
  prometheus::Counter& ok_;
  prometheus::Counter& error_;
};

// The gauges, read from the process's state when scraped.
class ScrapeTimeGauges final : public prometheus::Collectable {
 public:
  explicit ScrapeTimeGauges(Metrics::Sources sources) : sources_(std::move(sources)) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> families;
    if (sources_.counters != nullptr) {
      MetricFamily in_flight =
          Family("probity_searches_in_flight", "Searches being served now", MetricType::Gauge);
      AddSample(in_flight, {},
                static_cast<double>(std::max<int64_t>(0, sources_.counters->in_flight.load())));
      families.push_back(std::move(in_flight));
      // Wall time, summed over searches or calls: their rates are how busy the local shards
      // were (with one shard per GPU, that GPU) and how long searches waited in each phase.
      const auto seconds = [&families](const char* name, const char* help,
                                       const std::atomic<uint64_t>& micros) {
        MetricFamily family = Family(name, help, MetricType::Counter);
        AddSample(family, {}, static_cast<double>(micros.load()) / 1e6);
        families.push_back(std::move(family));
      };
      seconds("probity_shard_search_seconds_total",
              "Wall time inside this process's FAISS calls on its own shards, summed over calls",
              sources_.counters->shards.search_micros);
      seconds("probity_search_shard_phase_seconds_total",
              "Wall time searches spent in the shard phase (fan-out, batching, shard searches), "
              "summed over searches",
              sources_.counters->shard_phase_micros);
      seconds("probity_search_ledger_append_seconds_total",
              "Wall time searches spent in their ledger append, summed over searches",
              sources_.counters->ledger_append_micros);
      // The same two waits as distributions, one observation per search: which phase a slow
      // search's time went to (the _sum is the counter above).
      families.push_back(PhaseHistogram(
          "probity_search_shard_phase_duration_seconds", "Wall time of each search's shard phase",
          sources_.counters->shard_phase_latency, sources_.counters->shard_phase_micros));
      families.push_back(PhaseHistogram("probity_search_ledger_append_duration_seconds",
                                        "Wall time of each search's ledger append",
                                        sources_.counters->ledger_append_latency,
                                        sources_.counters->ledger_append_micros));
    }
    if (sources_.audit != nullptr) {
      MetricFamily not_recorded = Family(
          "probity_refusals_not_recorded_total",
          "Refusals of callers without a verified warrant left out of the ledger by the refusal "
          "rate limits",
          MetricType::Counter);
      AddSample(not_recorded, {}, static_cast<double>(sources_.audit->refusals_not_recorded()));
      families.push_back(std::move(not_recorded));
    }
    if (sources_.ledger != nullptr) {
      MetricFamily entries =
          Family("probity_ledger_entries", "Entries in the ledger (durable)", MetricType::Gauge);
      AddSample(entries, {}, static_cast<double>(sources_.ledger->Size()));
      families.push_back(std::move(entries));
      MetricFamily bytes =
          Family("probity_ledger_bytes", "Bytes of the ledger's segment files", MetricType::Gauge);
      AddSample(bytes, {}, static_cast<double>(sources_.ledger->StoredBytes()));
      families.push_back(std::move(bytes));
    }
    if (sources_.router != nullptr) families.push_back(ShardReplicas());
    if (sources_.catalog != nullptr) {
      families.push_back(ShardVectors());
      if (sources_.catalog->gpu() != nullptr) AddGpuMemory(families);
    }
    if (sources_.shard_servers) {
      MetricFamily reachable = Family(
          "probity_shard_server_reachable",
          "1 when this router has reached the shard server and routes to it, 0 while it retries",
          MetricType::Gauge);
      for (const auto& [server, reached] : sources_.shard_servers()) {
        AddSample(reachable, {{"server", server}}, reached ? 1 : 0);
      }
      families.push_back(std::move(reachable));
    }
    return families;
  }

 private:
  static MetricFamily PhaseHistogram(const char* name, const char* help,
                                     const LatencyHistogram& latency,
                                     const std::atomic<uint64_t>& sum_micros) {
    MetricFamily family = Family(name, help, MetricType::Histogram);
    const LatencyHistogram::Snapshot snapshot = latency.Read();
    ClientMetric metric;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
      cumulative += snapshot.counts[i];
      metric.histogram.bucket.push_back(
          {cumulative, i < LatencyHistogram::kUpperBoundsMicros.size()
                           ? static_cast<double>(LatencyHistogram::kUpperBoundsMicros[i]) / 1e6
                           : std::numeric_limits<double>::infinity()});
    }
    metric.histogram.sample_count = cumulative;
    metric.histogram.sample_sum = static_cast<double>(sum_micros.load()) / 1e6;
    family.metric.push_back(std::move(metric));
    return family;
  }

  MetricFamily ShardReplicas() const {
    MetricFamily family = Family("probity_shard_replicas",
                                 "Replicas the router can send each shard's searches to (0: the "
                                 "shard is missing from every search of its collection)",
                                 MetricType::Gauge);
    for (const std::string& name : sources_.router->Collections()) {
      const std::optional<CollectionRoute> route = sources_.router->Route(name);
      if (!route) continue;
      for (size_t shard = 0; shard < route->replicas.size(); ++shard) {
        AddSample(family, {{"collection", name}, {"shard", std::to_string(shard)}},
                  static_cast<double>(route->replicas[shard].size()));
      }
    }
    return family;
  }

  MetricFamily ShardVectors() const {
    MetricFamily family = Family("probity_shard_vectors",
                                 "Vectors in each shard this process holds", MetricType::Gauge);
    for (const auto& collection : sources_.catalog->List()) {
      for (int shard : collection->held_shards) {
        AddSample(family, {{"collection", collection->name}, {"shard", std::to_string(shard)}},
                  static_cast<double>(collection->index->ShardSize(shard)));
      }
    }
    return family;
  }

  // Only a process with a GpuRuntime (a -DPROBITY_GPU=ON build configured with "gpu") has these.
  void AddGpuMemory(std::vector<MetricFamily>& families) const {
    const index::GpuRuntime& gpu = *sources_.catalog->gpu();
    MetricFamily used =
        Family("probity_gpu_memory_used_bytes",
               "GPU memory in use (total minus free, cudaMemGetInfo)", MetricType::Gauge);
    MetricFamily total =
        Family("probity_gpu_memory_total_bytes", "GPU memory in all", MetricType::Gauge);
    for (int device : gpu.options().devices) {
      auto info = gpu.MemoryInfo(device);
      if (!info.ok()) {
        spdlog::warn("metrics: GPU {} memory not read: {}", device,
                     std::string(info.status().message()));
        continue;
      }
      const auto [free_bytes, total_bytes] = *info;
      AddSample(used, {{"device", std::to_string(device)}},
                static_cast<double>(total_bytes - free_bytes));
      AddSample(total, {{"device", std::to_string(device)}}, static_cast<double>(total_bytes));
    }
    families.push_back(std::move(used));
    families.push_back(std::move(total));
  }

  const Metrics::Sources sources_;
};

}  // namespace

struct Metrics::Impl {
  Impl()
      : registry(std::make_shared<prometheus::Registry>()),
        searches(prometheus::BuildCounter()
                     .Name("probity_searches_total")
                     .Help("Search calls by how they ended")
                     .Register(*registry)),
        search_seconds(prometheus::BuildHistogram()
                           .Name("probity_search_duration_seconds")
                           .Help("Time from receiving a search that ran on the shards to its "
                                 "answer, ledger append included")
                           .Register(*registry)
                           .Add({}, kSearchSecondsBuckets)),
        shards_missing(prometheus::BuildCounter()
                           .Name("probity_search_shards_missing_total")
                           .Help("Shards that did not answer, summed over the searches that ran")
                           .Register(*registry)
                           .Add({})),
        refusals(prometheus::BuildCounter()
                     .Name("probity_refusals_total")
                     .Help("Calls refused, by refusal code: searches refused (warrant, "
                           "request, collection) or turned away busy, and Admin, Ledger and "
                           "Shard calls refused at the call gate")
                     .Register(*registry)),
        shard_searches(prometheus::BuildCounter()
                           .Name("probity_shard_searches_total")
                           .Help("Shard searches by backend (local, or a shard server) and result")
                           .Register(*registry)) {
    constexpr std::array<std::pair<SearchOutcome, const char*>, 4> kRan = {{
        {SearchOutcome::kAnswered, "answered"},
        {SearchOutcome::kAnsweredPartial, "answered_partial"},
        {SearchOutcome::kFailed, "failed"},
        {SearchOutcome::kNotRecorded, "not_recorded"},
    }};
    for (const auto& [outcome, name] : kRan) {
      by_outcome[static_cast<size_t>(outcome)] = &searches.Add({{"outcome", name}});
    }
    refused = &searches.Add({{"outcome", "refused"}});
    busy = &searches.Add({{"outcome", "busy"}});
    for (const std::string& code : RefusalCodes()) {
      by_code.emplace(code, &refusals.Add({{"code", code}}));
    }
    other_code = by_code.at(std::string(kOtherRefusalCode));
    busy_code = by_code.at(std::string(Metrics::kServerBusy));
  }

  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>& searches;
  prometheus::Histogram& search_seconds;
  prometheus::Counter& shards_missing;
  prometheus::Family<prometheus::Counter>& refusals;
  prometheus::Family<prometheus::Counter>& shard_searches;
  std::shared_ptr<LedgerCommitMetrics> ledger_observer;  // made for a process with a ledger
  // Children made at start, so the hot path never looks a label set up under a lock.
  std::array<prometheus::Counter*, 4> by_outcome{};
  prometheus::Counter* refused = nullptr;
  prometheus::Counter* busy = nullptr;
  std::map<std::string, prometheus::Counter*, std::less<>> by_code;  // read-only after start
  prometheus::Counter* other_code = nullptr;
  prometheus::Counter* busy_code = nullptr;
  std::shared_ptr<ScrapeTimeGauges> gauges;
  mg_context* http = nullptr;  // stopped first in ~Metrics, before the rest goes
};

namespace {

// The HTTP side. civetweb (what prometheus-cpp's pull Exposer runs on) comes from Debian built
// with 100 KiB worker stacks, and its own response paths nearly fill them: at the Exposer's
// mg_printf of a 200 response 8.4 KiB were left for an 8 KiB buffer, and its error pages
// (mg_send_http_error: any path but /metrics, any method but GET, a malformed request) ran past
// the end and crashed the whole process. So civetweb only parses requests here: every answer
// is written with mg_write alone (no printf, no large buffers), and the metrics text is made
// on a thread with an ordinary stack.

void WriteResponse(mg_connection* connection, int status, std::string_view reason,
                   std::string_view extra_headers, std::string_view body, bool send_body) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " ";
  head.append(reason).append("\r\n").append(extra_headers);
  head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  mg_write(connection, head.data(), head.size());
  if (send_body && !body.empty()) mg_write(connection, body.data(), body.size());
}

int AnswerRequest(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  const auto* metrics = static_cast<const Metrics*>(request->user_data);
  const std::string_view method = request->request_method ? request->request_method : "";
  const std::string_view path = request->local_uri ? request->local_uri : "";
  const bool head = method == "HEAD";
  if (path != "/metrics") {
    WriteResponse(connection, 404, "Not Found", "Content-Type: text/plain\r\n",
                  "only /metrics is served here\n", !head);
    return 404;
  }
  if (method != "GET" && !head) {
    WriteResponse(connection, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "", false);
    return 405;
  }
  std::string text;
  try {
    text = std::async(std::launch::async, [metrics] { return metrics->Text(); }).get();
  } catch (const std::exception&) {  // no thread to be had
    WriteResponse(connection, 503, "Service Unavailable", "", "", false);
    return 503;
  }
  WriteResponse(connection, 200, "OK", "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
                text, !head);
  return 200;
}

// Errors civetweb finds itself (a request it cannot parse, one too large): answered here too,
// instead of by its own error page (see above).
int AnswerError(mg_connection* connection, int status, const char* /*message*/) {
  WriteResponse(connection, status, "Error", "", "", false);
  return 0;  // handled
}

}  // namespace

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}

Metrics::~Metrics() {
  if (impl_->http != nullptr) mg_stop(impl_->http);  // joins its threads
}

std::vector<std::string> Metrics::RefusalCodes() {
  std::vector<std::string> codes;
  for (int code = 0; code <= static_cast<int>(warrant::RefusalCode::kIdentityMismatch); ++code) {
    codes.emplace_back(warrant::RefusalCodeName(static_cast<warrant::RefusalCode>(code)));
  }
  for (std::string_view code : kServiceRefusalCodes) codes.emplace_back(code);
  codes.emplace_back(kOtherRefusalCode);
  return codes;
}

void Metrics::SetSources(Sources sources) {
  impl_->gauges = std::make_shared<ScrapeTimeGauges>(std::move(sources));
}

absl::Status Metrics::Listen(const std::string& address) {
  static std::once_flag civetweb_initialized;
  std::call_once(civetweb_initialized, [] { mg_init_library(0); });
  // Two threads (scrapes are rare and cheap); a client that stalls is dropped after 10 s, so
  // it cannot hold them. No document root: nothing but the answers above is served.
  const char* options[] = {"listening_ports",    address.c_str(), "num_threads", "2",
                           "request_timeout_ms", "10000",         nullptr};
  mg_callbacks callbacks{};
  callbacks.begin_request = AnswerRequest;
  callbacks.http_error = AnswerError;
  mg_init_data init{&callbacks, this, options};
  char error_text[256] = "";
  unsigned error_code = 0;
  mg_error_data error{&error_code, error_text, sizeof(error_text)};
  impl_->http = mg_start2(&init, &error);
  if (impl_->http == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", address, ": ", error_text));
  }
  spdlog::info("metrics on http://{}/metrics (port {})", address, port());
  return absl::OkStatus();
}

int Metrics::port() const {
  if (impl_->http == nullptr) return 0;
  mg_server_port ports[1] = {};
  return mg_get_server_ports(impl_->http, 1, ports) >= 1 ? ports[0].port : 0;
}

std::string Metrics::Text() const {
  std::vector<MetricFamily> families = impl_->registry->Collect();
  if (impl_->gauges != nullptr) {
    for (MetricFamily& family : impl_->gauges->Collect()) families.push_back(std::move(family));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::SearchBusy() {
  impl_->busy->Increment();
  impl_->busy_code->Increment();
}

void Metrics::SearchRefused(std::string_view code) {
  impl_->refused->Increment();
  const auto it = impl_->by_code.find(code);
  (it == impl_->by_code.end() ? impl_->other_code : it->second)->Increment();
}

void Metrics::CallRefused(std::string_view code) {
  const auto it = impl_->by_code.find(code);
  (it == impl_->by_code.end() ? impl_->other_code : it->second)->Increment();
}

void Metrics::SearchRan(SearchOutcome outcome, absl::Duration elapsed, uint32_t shards_answered,
                        uint32_t shards_total) {
  impl_->by_outcome[static_cast<size_t>(outcome)]->Increment();
  impl_->search_seconds.Observe(absl::ToDoubleSeconds(elapsed));
  if (shards_total > shards_answered) {
    impl_->shards_missing.Increment(static_cast<double>(shards_total - shards_answered));
  }
}

std::shared_ptr<ledger::CommitObserver> Metrics::ledger_observer() {
  if (impl_->ledger_observer == nullptr) {
    impl_->ledger_observer = std::make_shared<LedgerCommitMetrics>(impl_->registry);
  }
  return impl_->ledger_observer;
}

std::shared_ptr<ShardBackend> Metrics::Observe(std::shared_ptr<ShardBackend> backend) {
  const std::string name = backend->Describe();
  // Add returns the existing child for a label set seen before (a shard server found again).
  prometheus::Counter& ok = impl_->shard_searches.Add({{"backend", name}, {"result", "ok"}});
  prometheus::Counter& error = impl_->shard_searches.Add({{"backend", name}, {"result", "error"}});
  return std::make_shared<ObservedShardBackend>(std::move(backend), ok, error);
}

}  // namespace probity::service
