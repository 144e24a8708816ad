#pragma once

// The Prometheus metrics of one process (`probity serve` or `probity shard`), served as text
// (GET /metrics) on their own address when the config has "metrics". Every metric is listed in
// server/service/README.md ("Metrics").
//
// No personal data: label values are fixed sets (outcomes, refusal codes, ok/error), names from
// the operator's config (collections, shard server addresses), shard numbers and GPU ordinals,
// never anything a request or a warrant carries (warrant ids, case numbers, identities, query
// data, justifications).
//
// Cost: per search, one prometheus-cpp histogram observation (a short uncontended mutex inside
// prometheus-cpp) and one or two lock-free counter increments on children created at start;
// per shard search, one lock-free increment; per ledger group commit, two histogram
// observations and one increment. Gauges (ledger size, shard replicas and vectors, in flight,
// GPU memory) are read only when scraped. With no "metrics" in the config nothing is created
// and the service checks one null pointer per search.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace probity::ledger {
class CommitObserver;
class Ledger;
}  // namespace probity::ledger

namespace probity::service {

struct ServiceCounters;
class AuditLog;
class Catalog;
class Router;
class ShardBackend;

// How a search that ran on the shards ended.
enum class SearchOutcome {
  kAnswered,         // every shard answered; the entry is durable and the answer sent
  kAnsweredPartial,  // allow_partial and some shards missing
  kFailed,           // shards missing without allow_partial (recorded as FAILED)
  kNotRecorded,      // the ledger could not record it, so it was not answered (fail closed)
};

class Metrics {
 public:
  // What is read when the endpoint is scraped; any may be null. The pointees must outlive the
  // Metrics object (the server declares it after them, so it is destroyed first).
  struct Sources {
    const ServiceCounters* counters = nullptr;
    const AuditLog* audit = nullptr;
    const ledger::Ledger* ledger = nullptr;
    const Router* router = nullptr;    // routes: replicas per shard
    const Catalog* catalog = nullptr;  // shards held here, and their GPUs
    // Router mode: each configured shard server and whether it has been reached.
    std::function<std::vector<std::pair<std::string, bool>>()> shard_servers;
  };

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Call once, before Listen.
  void SetSources(Sources sources);
  // Serves GET /metrics on `address` ("IP:port", port 0 = a free one) from two HTTP threads.
  absl::Status Listen(const std::string& address);
  int port() const;  // the bound port, after Listen
  // The text a scrape returns now (Prometheus text format 0.0.4).
  std::string Text() const;

  // The hot path.
  void SearchBusy();                          // also probity_refusals_total{code="server_busy"}
  void SearchRefused(std::string_view code);  // a code outside the known set counts as "other"
  // A call the CallGate refused before its handler ran (an Admin, Ledger or Shard call without
  // a credential of the method's role): probity_refusals_total by `code`, kCallerUnauthenticated
  // or kCallerNotPermitted (anything else counts as "other"). Not a search.
  void CallRefused(std::string_view code);
  void SearchRan(SearchOutcome outcome, absl::Duration elapsed, uint32_t shards_answered,
                 uint32_t shards_total);

  // For ledger::Options::observer: appends, fsync latency, group commit sizes. The ledger
  // series exist from the first call on (a process without a ledger has none); call it at
  // start, before serving.
  std::shared_ptr<ledger::CommitObserver> ledger_observer();
  // `backend` with its shard searches counted by result under its Describe() name ("local",
  // or a shard server's address).
  std::shared_ptr<ShardBackend> Observe(std::shared_ptr<ShardBackend> backend);

  // The label values of probity_refusals_total, all created at start (so they read 0 rather
  // than being absent): the warrant library's codes, the service's own (the search service's,
  // the call gate's and server_busy), and "other".
  static std::vector<std::string> RefusalCodes();

  // The call gate's refusal codes, also the REFUSAL entries' codes for the calls it refuses.
  static constexpr std::string_view kCallerUnauthenticated = "caller_unauthenticated";
  static constexpr std::string_view kCallerNotPermitted = "caller_not_permitted";
  // A search turned away over max_in_flight (RESOURCE_EXHAUSTED, not in the ledger).
  static constexpr std::string_view kServerBusy = "server_busy";

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace probity::service
