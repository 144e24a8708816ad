// search_load: concurrent warranted searches against a running Probity service (router or
// embedded), for the scale and fault benchmark (bench/server/scale.sh), and the check that
// every search a client saw answered has its ledger entry.
//
//   search_load run --target HOST:PORT --token-file W --queries Q.fbin --collection C
//                   [--clients 1,16,64] [--seconds 10] [--k 10] [--nprobe 16]
//                   [--deadline-ms 2000] [--allow-partial] [--label NAME] [--receipts FILE]
//   search_load check-ledger --ledger-dir DIR --receipts FILE
//
// `run` prints one line per client count: attempted, answered (full coverage), partial,
// failed, QPS of answered searches and p50/p99 latency of answered searches. Each client has
// its own connection and sends one query per call, back to back. With --receipts it appends
// "entry_index first_candidate_id candidate_count" for every answered search, which
// `check-ledger` then finds in the ledger (a SEARCH entry, answered or answered-partial, with
// the same candidates), after the service has stopped.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/load_client_channel.h"
#include "probity/common/abseil_deadlock_detection.h"
#include "probity/common/file_read.h"
#include "probity/index/embedding_io.h"
#include "probity/ledger/reader.h"
#include "probity/v1/ledger_entry.pb.h"
#include "probity/v1/search.grpc.pb.h"

namespace probity::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct RunFlags {
  std::string target;
  std::string token_file;
  std::string queries;
  std::string collection;
  std::vector<int> clients = {1, 16, 64};
  double seconds = 10;
  int k = 10;
  int nprobe = 16;
  int deadline_ms = 2000;
  bool allow_partial = false;
  std::string label = "load";
  std::string receipts;
};

struct Receipt {
  uint64_t entry_index = 0;
  int64_t first_id = -1;
  int count = 0;
};

struct Tally {
  uint64_t attempted = 0;
  uint64_t answered = 0;
  uint64_t partial = 0;
  uint64_t failed = 0;
  std::map<std::string, uint64_t> failures_by_code;
  std::map<std::string, std::string> first_message_by_code;  // what to look at when one fails
  std::vector<double> latencies_ms;                          // of answered and partial searches
  std::vector<Receipt> receipts;

  void Merge(Tally&& other) {
    attempted += other.attempted;
    answered += other.answered;
    partial += other.partial;
    failed += other.failed;
    for (const auto& [code, n] : other.failures_by_code) failures_by_code[code] += n;
    first_message_by_code.merge(other.first_message_by_code);  // keeps ours where both have one
    latencies_ms.insert(latencies_ms.end(), other.latencies_ms.begin(), other.latencies_ms.end());
    receipts.insert(receipts.end(), other.receipts.begin(), other.receipts.end());
  }
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    default:
      return "code_" + std::to_string(static_cast<int>(code));
  }
}

// `clients` threads, each on its own channel, send one-query searches back to back for
// `seconds` after every client's first call (connection set-up is not measured).
Tally RunClients(const RunFlags& flags, const index::FloatMatrix& queries, const std::string& token,
                 int clients) {
  std::mutex mutex;
  Tally total;
  Clock::time_point window_end;
  std::barrier start(clients, [&]() noexcept {
    window_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(flags.seconds));
  });
  auto client = [&](int id) {
    auto stub = v1::Search::NewStub(LoadClientChannel(flags.target, id));
    v1::SearchRequest request;
    request.set_collection(flags.collection);
    request.set_k(flags.k);
    request.set_nprobe(flags.nprobe);
    request.set_allow_partial(flags.allow_partial);
    auto* values = request.add_queries()->mutable_values();
    values->Resize(queries.dim, 0);
    int64_t row = (static_cast<int64_t>(id) * 7919) % queries.rows;
    Tally mine;
    auto call = [&](bool counted) {
      const float* query = queries.data.data() + row * queries.dim;
      row = (row + 1) % queries.rows;
      std::copy(query, query + queries.dim, values->begin());
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer " + token);
      PrepareLoadCall(
          context, std::chrono::system_clock::now() + std::chrono::milliseconds(flags.deadline_ms));
      v1::SearchResponse response;
      const auto begin = Clock::now();
      const grpc::Status status = stub->Search(&context, request, &response);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
      if (!counted || Clock::now() > window_end) return;
      ++mine.attempted;
      if (!status.ok()) {
        ++mine.failed;
        const std::string code = CodeName(status.error_code());
        ++mine.failures_by_code[code];
        mine.first_message_by_code.emplace(code, status.error_message());
        return;
      }
      ++(response.coverage().partial() ? mine.partial : mine.answered);
      mine.latencies_ms.push_back(ms);
      const auto& candidates = response.results(0).candidates();
      mine.receipts.push_back({response.receipt().entry_index(),
                               candidates.empty() ? -1 : candidates[0].id(), candidates.size()});
    };
    call(false);
    start.arrive_and_wait();
    while (Clock::now() < window_end) call(true);
    std::lock_guard lock(mutex);
    total.Merge(std::move(mine));
  };
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int i = 0; i < clients; ++i) threads.emplace_back(client, i);
  for (auto& thread : threads) thread.join();
  std::sort(total.latencies_ms.begin(), total.latencies_ms.end());
  return total;
}

int Run(const RunFlags& flags) {
  absl::StatusOr<std::string> token = common::ReadFileToString(flags.token_file);
  if (!token.ok()) {
    std::cerr << token.status() << "\n";
    return 1;
  }
  token->erase(token->find_last_not_of(" \n\r\t") + 1);
  absl::StatusOr<index::FloatMatrix> queries = index::ReadFloatMatrix(flags.queries);
  if (!queries.ok() || queries->rows == 0) {
    std::cerr << flags.queries << ": "
              << (queries.ok() ? absl::InvalidArgumentError("no rows") : queries.status()) << "\n";
    return 1;
  }
  std::ofstream receipts;
  if (!flags.receipts.empty()) {
    receipts.open(flags.receipts, std::ios::app);
    if (!receipts) {
      std::cerr << "cannot append to " << flags.receipts << "\n";
      return 1;
    }
  }
  for (int clients : flags.clients) {
    Tally tally = RunClients(flags, *queries, *token, clients);
    const uint64_t answered = tally.answered + tally.partial;
    std::printf(
        "%s clients %d attempted %lu answered %lu partial %lu failed %lu qps %.1f p50_ms %.2f "
        "p99_ms %.2f max_ms %.2f",
        flags.label.c_str(), clients, tally.attempted, tally.answered, tally.partial, tally.failed,
        answered / flags.seconds, Percentile(tally.latencies_ms, 0.50),
        Percentile(tally.latencies_ms, 0.99),
        tally.latencies_ms.empty() ? 0.0 : tally.latencies_ms.back());
    for (const auto& [code, n] : tally.failures_by_code) std::printf(" %s %lu", code.c_str(), n);
    std::printf("\n");
    std::fflush(stdout);
    for (const auto& [code, message] : tally.first_message_by_code) {
      std::fprintf(stderr, "%s: a %s failure said: %s\n", flags.label.c_str(), code.c_str(),
                   message.c_str());
    }
    for (const Receipt& r : tally.receipts) {
      if (receipts.is_open())
        receipts << r.entry_index << ' ' << r.first_id << ' ' << r.count << '\n';
    }
  }
  return 0;
}

// Every receipt names a SEARCH entry that was answered (fully or partially) with the same
// first candidate and candidate count; prints how many receipts and answered entries it saw.
int CheckLedger(const std::string& ledger_dir, const std::string& receipts_file) {
  std::map<uint64_t, Receipt> expected;
  std::ifstream in(receipts_file);
  Receipt r;
  while (in >> r.entry_index >> r.first_id >> r.count) {
    if (!expected.emplace(r.entry_index, r).second) {
      std::cerr << "two answers carry ledger entry " << r.entry_index << "\n";
      return 1;
    }
  }
  uint64_t answered_entries = 0;
  uint64_t found = 0;
  std::string mismatch;
  absl::Status read = ledger::ReadEntries(
      ledger_dir, 0, [&](uint64_t index, std::string_view bytes) -> absl::StatusOr<bool> {
        v1::LedgerEntry entry;
        if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          return absl::DataLossError("entry " + std::to_string(index) + " does not parse");
        }
        const bool answered = entry.kind() == v1::ENTRY_KIND_SEARCH &&
                              (entry.outcome() == v1::OUTCOME_ANSWERED ||
                               entry.outcome() == v1::OUTCOME_ANSWERED_PARTIAL);
        answered_entries += answered ? 1 : 0;
        auto it = expected.find(index);
        if (it == expected.end()) return true;
        ++found;
        const Receipt& want = it->second;
        const auto& candidates = entry.queries(0).candidates();
        const int64_t first = candidates.empty() ? -1 : candidates[0].id();
        if (!answered || candidates.size() != want.count || first != want.first_id) {
          if (mismatch.empty()) mismatch = "entry " + std::to_string(index);
        }
        return true;
      });
  if (!read.ok()) {
    std::cerr << read << "\n";
    return 1;
  }
  std::printf(
      "ledger: %lu answered searches seen by clients, %lu found, %lu answered SEARCH "
      "entries in the ledger%s\n",
      expected.size(), found, answered_entries,
      mismatch.empty() ? "" : (", first mismatch: " + mismatch).c_str());
  return found == expected.size() && mismatch.empty() ? 0 : 1;
}

}  // namespace
}  // namespace probity::bench

int main(int argc, char** argv) {
  // The load's own gRPC clients as the probity binary's (common/abseil_deadlock_detection.h).
  probity::common::TurnOffAbseilDeadlockDetection();
  CLI::App app{"Concurrent warranted searches against a Probity service, and their ledger check"};
  app.require_subcommand(1);
  probity::bench::RunFlags flags;
  CLI::App* run = app.add_subcommand("run", "search with N clients and print the tallies");
  run->add_option("--target", flags.target, "service host:port")->required();
  run->add_option("--token-file", flags.token_file, "warrant token file")->required();
  run->add_option("--queries", flags.queries, "query vectors (.fbin, .fvecs, .npy)")->required();
  run->add_option("--collection", flags.collection, "collection name")->required();
  run->add_option("--clients", flags.clients, "client counts, one run each")->delimiter(',');
  run->add_option("--seconds", flags.seconds, "measured window per client count");
  run->add_option("--k", flags.k, "candidates per query");
  run->add_option("--nprobe", flags.nprobe, "lists probed per shard");
  run->add_option("--deadline-ms", flags.deadline_ms, "client deadline per call");
  run->add_flag("--allow-partial", flags.allow_partial, "accept answers from some shards");
  run->add_option("--label", flags.label, "first word of every output line");
  run->add_option("--receipts", flags.receipts, "append answered searches' ledger entries here");
  std::string ledger_dir;
  std::string receipts;
  CLI::App* check = app.add_subcommand("check-ledger", "find every answered search's ledger entry");
  check->add_option("--ledger-dir", ledger_dir, "the service's ledger directory")->required();
  check->add_option("--receipts", receipts, "file written by run --receipts")->required();
  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return probity::bench::Run(flags);
  return probity::bench::CheckLedger(ledger_dir, receipts);
}
