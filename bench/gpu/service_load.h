#pragma once

// Load on the embedded service for the GPU benchmark: concurrent single-query clients over
// loopback gRPC, and a ledger wrapper that measures how many appends wait together (the most
// one group commit can take in one fsync).

#include <atomic>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/forwarding_ledger.h"
#include "probity/v1/search.pb.h"

namespace probity::bench {

// Forwards everything to the real ledger and counts, at the start of every append, how many
// appends are in flight including this one. Their mean and maximum bound the group-commit size.
class CountingLedger final : public ledger::ForwardingLedger {
 public:
  using ForwardingLedger::ForwardingLedger;

  struct Stats {
    uint64_t appends = 0;
    double mean_in_flight = 0;
    int64_t max_in_flight = 0;
  };
  Stats TakeStats();  // and starts counting afresh

  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry) override;

 private:
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> max_in_flight_{0};
  std::atomic<uint64_t> appends_{0};
  std::atomic<uint64_t> in_flight_sum_{0};
};

struct ClientLoad {
  int port = 0;
  std::string token;  // warrant, sent as "authorization: Bearer ..."
  std::string collection;
  int k = 10;
  int nprobe = 16;
  int dim = 0;
  std::span<const float> queries;  // rows cycled through by the clients
  int clients = 1;                 // each on its own channel, one query per call
  double seconds = 3;              // measured window, after every client's first call
};

struct LoadResult {
  uint64_t calls = 0;     // answered in the window; qps and the percentiles count only these
  uint64_t failures = 0;  // failed in the window
  std::string first_error;
  double seconds = 0;
  double qps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  // The whole process's CPU time (clients, embedded server, every thread) from the window's
  // start until every client has finished its last call: per answered call, and divided by
  // that wall time (how many cores were busy on average). Tells a CPU-bound service (every
  // core busy) from one that waits on something serial.
  double cpu_us_per_call = 0;
  double cores_busy = 0;
};

// Runs `load.clients` threads that each send Search calls back to back until the window ends.
LoadResult RunClients(const ClientLoad& load);

// The same load from `load.clients` clients on gRPC's callback API (CallbackClients): one call
// in flight each, no thread per client, so the load generator takes less of the machine.
LoadResult RunCallbackClients(const ClientLoad& load);

// Where the clients of RunClientsInOtherProcess come from: search_load (bench/server), given the
// warrant and the query rows as files.
struct OtherProcessLoad {
  std::filesystem::path program;       // search_load
  std::filesystem::path token_file;    // load.token, owner-only
  std::filesystem::path queries_file;  // load.queries as .fbin
  int processes = 1;                   // load.clients split as evenly as they go
};

// The same load from `load.clients` threads in `other.processes` other processes (search_load
// run, all started together), so that the clients do not share this process's gRPC polling and
// threads with the server, nor, with several processes, one process's polling among themselves
// (gRPC's epoll engine lets one thread of a process wait for events at a time). q/s is the sum of
// the processes' rates (answered calls in each one's window; the windows overlap); p50 and p99
// are the largest of the processes' own, so upper bounds of the pooled percentiles. The CPU
// figures add the children's CPU time (RUSAGE_CHILDREN) to this process's over the children's
// whole lives, connections and start-up included, so they slightly overstate the cost per call
// and understate cores busy.
absl::StatusOr<LoadResult> RunClientsInOtherProcess(const ClientLoad& load,
                                                    const OtherProcessLoad& other);

// One Search call as a load client makes it (the first query row), for a response of the real
// size to serve from a canned-answer server (bench/common/canned_search_server.h).
absl::StatusOr<v1::SearchResponse> SearchOnce(const ClientLoad& load);

}  // namespace probity::bench
