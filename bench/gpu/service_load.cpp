#include "service_load.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/callback_clients.h"
#include "common/load_client_channel.h"
#include "probity/v1/search.grpc.pb.h"

namespace probity::bench {

absl::StatusOr<ledger::Receipt> CountingLedger::Append(const v1::LedgerEntry& entry) {
  const int64_t now = in_flight_.fetch_add(1) + 1;
  int64_t seen = max_in_flight_.load();
  while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
  }
  appends_.fetch_add(1);
  in_flight_sum_.fetch_add(static_cast<uint64_t>(now));
  absl::StatusOr<ledger::Receipt> receipt = inner().Append(entry);
  in_flight_.fetch_sub(1);
  return receipt;
}

CountingLedger::Stats CountingLedger::TakeStats() {
  Stats stats;
  stats.appends = appends_.exchange(0);
  const uint64_t sum = in_flight_sum_.exchange(0);
  stats.max_in_flight = max_in_flight_.exchange(0);
  stats.mean_in_flight = stats.appends == 0 ? 0 : static_cast<double>(sum) / stats.appends;
  return stats;
}

namespace {

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

// Fills the rates, percentiles and CPU figures of `result` from the answered calls' latencies.
void Summarize(std::vector<double> latencies_ms, double window_seconds, double cpu_seconds,
               double busy_seconds, LoadResult& result) {
  std::sort(latencies_ms.begin(), latencies_ms.end());
  result.calls = latencies_ms.size();
  result.seconds = window_seconds;
  result.qps = result.seconds > 0 ? static_cast<double>(result.calls) / result.seconds : 0;
  result.p50_ms = Percentile(latencies_ms, 0.50);
  result.p99_ms = Percentile(latencies_ms, 0.99);
  result.cpu_us_per_call =
      result.calls > 0 ? cpu_seconds * 1e6 / static_cast<double>(result.calls) : 0;
  result.cores_busy = busy_seconds > 0 ? cpu_seconds / busy_seconds : 0;
}

v1::SearchRequest LoadRequest(const ClientLoad& load) {
  v1::SearchRequest request;
  request.set_collection(load.collection);
  request.set_k(load.k);
  request.set_nprobe(load.nprobe);
  request.add_queries()->mutable_values()->Resize(load.dim, 0);
  return request;
}

void PrepareCall(const ClientLoad& load, grpc::ClientContext& context) {
  context.AddMetadata("authorization", "Bearer " + load.token);
  PrepareLoadCall(context, std::chrono::system_clock::now() + std::chrono::seconds(10));
}

double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

}  // namespace

LoadResult RunClients(const ClientLoad& load) {
  using Clock = std::chrono::steady_clock;
  const int64_t rows = static_cast<int64_t>(load.queries.size()) / load.dim;
  std::mutex mutex;
  std::vector<double> latencies_ms;
  LoadResult result;
  Clock::time_point window_start;
  Clock::time_point window_end;
  double cpu_start = 0;
  // Every client connects and answers one call before the window opens, so that connection
  // set-up is not measured; the last one to arrive sets the window.
  std::barrier start(load.clients, [&]() noexcept {
    cpu_start = ProcessCpuSeconds();
    window_start = Clock::now();
    window_end = window_start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(load.seconds));
  });

  auto client = [&](int id) {
    auto stub =
        v1::Search::NewStub(LoadClientChannel("127.0.0.1:" + std::to_string(load.port), id));
    v1::SearchRequest request = LoadRequest(load);
    auto* values = request.mutable_queries(0)->mutable_values();
    std::vector<double> mine;
    uint64_t failures = 0;
    std::string first_error;
    int64_t row = (static_cast<int64_t>(id) * 7919) % rows;
    auto call = [&] {
      const float* query = load.queries.data() + row * load.dim;
      row = (row + 1) % rows;
      std::copy(query, query + load.dim, values->begin());
      grpc::ClientContext context;
      PrepareCall(load, context);
      v1::SearchResponse response;
      const auto begin = Clock::now();
      const grpc::Status status = stub->Search(&context, request, &response);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
      if (!status.ok()) {
        if (first_error.empty()) first_error = status.error_message();
        return std::optional<double>();
      }
      return std::optional<double>(ms);
    };
    call();
    start.arrive_and_wait();
    while (Clock::now() < window_end) {
      const std::optional<double> ms = call();
      if (Clock::now() > window_end) break;
      // Only answered calls are counted and timed: a failed one (often failed at once) would
      // add throughput that was never served.
      if (ms) {
        mine.push_back(*ms);
      } else {
        ++failures;
      }
    }
    std::lock_guard lock(mutex);
    latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    result.failures += failures;
    if (result.first_error.empty()) result.first_error = first_error;
  };

  std::vector<std::thread> threads;
  threads.reserve(load.clients);
  for (int i = 0; i < load.clients; ++i) threads.emplace_back(client, i);
  for (auto& thread : threads) thread.join();
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  const double busy_seconds = std::chrono::duration<double>(Clock::now() - window_start).count();

  // Calls finished after the window are few (one per client at most) and are left out of the
  // count, so the CPU per call is slightly overstated at many clients.
  Summarize(std::move(latencies_ms),
            std::chrono::duration<double>(window_end - window_start).count(), cpu_seconds,
            busy_seconds, result);
  return result;
}

LoadResult RunCallbackClients(const ClientLoad& load) {
  using Clock = std::chrono::steady_clock;
  const int64_t rows = static_cast<int64_t>(load.queries.size()) / load.dim;
  std::vector<int64_t> next_row(load.clients);
  for (int c = 0; c < load.clients; ++c) next_row[c] = (static_cast<int64_t>(c) * 7919) % rows;
  CallbackClients clients("127.0.0.1:" + std::to_string(load.port), load.clients,
                          "Bearer " + load.token, LoadRequest(load), [&](int c) {
                            const float* query = load.queries.data() + next_row[c] * load.dim;
                            next_row[c] = (next_row[c] + 1) % rows;
                            return query;
                          });
  // As many answers as clients before the window opens (their connections are set up then).
  clients.Start();
  for (int c = 0; c < load.clients; ++c) clients.WaitForOne();
  clients.TakeLatenciesMicros();
  const uint64_t failures_before = clients.failures();
  const double cpu_start = ProcessCpuSeconds();
  const Clock::time_point window_start = Clock::now();
  std::this_thread::sleep_until(window_start + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(load.seconds)));
  std::vector<double> latencies_ms = clients.TakeLatenciesMicros();
  const double window_seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  LoadResult result;
  result.failures = clients.failures() - failures_before;
  result.first_error = clients.first_error();
  clients.Stop();
  for (double& latency : latencies_ms) latency /= 1000;
  // Answered calls in the window over the window, and the CPU of that window: no call in
  // flight at its end is counted (unlike RunClients, which waits for the last calls).
  Summarize(std::move(latencies_ms), window_seconds, cpu_seconds, window_seconds, result);
  return result;
}

absl::StatusOr<v1::SearchResponse> SearchOnce(const ClientLoad& load) {
  auto stub = v1::Search::NewStub(LoadClientChannel("127.0.0.1:" + std::to_string(load.port), 0));
  v1::SearchRequest request = LoadRequest(load);
  std::copy(load.queries.begin(), load.queries.begin() + load.dim,
            request.mutable_queries(0)->mutable_values()->begin());
  grpc::ClientContext context;
  PrepareCall(load, context);
  v1::SearchResponse response;
  const grpc::Status status = stub->Search(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("one search for the canned answer: ", status.error_message()));
  }
  return response;
}

namespace {

double ChildrenCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The value after `key` in search_load's tally line ("... answered 123 ... qps 45.6 ...").
std::optional<double> TallyValue(const std::string& line, const std::string& key) {
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    if (word != key) continue;
    double value = 0;
    if (words >> value) return value;
    return std::nullopt;
  }
  return std::nullopt;
}

// One running search_load and the pipe its tally comes back on.
struct LoadProcess {
  std::vector<std::string> args;
  pid_t pid = 0;
  int output = -1;
};

absl::StatusOr<LoadProcess> SpawnLoadProcess(const ClientLoad& load, const OtherProcessLoad& other,
                                             int clients, int index) {
  LoadProcess process;
  process.args = {other.program.string(),
                  "run",
                  "--target",
                  absl::StrCat("127.0.0.1:", load.port),
                  "--token-file",
                  other.token_file.string(),
                  "--queries",
                  other.queries_file.string(),
                  "--collection",
                  load.collection,
                  "--clients",
                  std::to_string(clients),
                  "--seconds",
                  absl::StrCat(load.seconds),
                  "--k",
                  std::to_string(load.k),
                  "--nprobe",
                  std::to_string(load.nprobe),
                  "--deadline-ms",
                  "10000",
                  "--label",
                  absl::StrCat("other-process-", index)};
  std::vector<char*> argv;
  for (const std::string& arg : process.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe for the load process failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  const int spawned = posix_spawn(&process.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", other.program.string(), ": ", std::strerror(spawned)));
  }
  process.output = out[0];
  return process;
}

// Waits for `process` and returns what it printed, or why it failed.
absl::StatusOr<std::string> CollectLoadProcess(LoadProcess& process) {
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = read(process.output, buffer, sizeof buffer)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    output.append(buffer, static_cast<size_t>(n));
  }
  close(process.output);
  int status = 0;
  while (waitpid(process.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(process.args, " "), " failed (status ",
                                            status, "); it printed: ", output));
  }
  return output;
}

}  // namespace

absl::StatusOr<LoadResult> RunClientsInOtherProcess(const ClientLoad& load,
                                                    const OtherProcessLoad& other) {
  const int processes = std::clamp(other.processes, 1, std::max(1, load.clients));
  const double cpu_before = ProcessCpuSeconds() + ChildrenCpuSeconds();
  const auto wall_before = std::chrono::steady_clock::now();
  // All started before any is waited for, so that their windows overlap.
  std::vector<LoadProcess> running;
  absl::Status spawn_status;
  for (int i = 0; i < processes && spawn_status.ok(); ++i) {
    const int clients = load.clients / processes + (i < load.clients % processes ? 1 : 0);
    auto process = SpawnLoadProcess(load, other, clients, i);
    if (process.ok()) {
      running.push_back(*std::move(process));
    } else {
      spawn_status = process.status();
    }
  }
  std::vector<std::string> outputs;
  absl::Status collect_status;
  for (LoadProcess& process : running) {
    auto output = CollectLoadProcess(process);
    if (output.ok()) {
      outputs.push_back(*std::move(output));
    } else if (collect_status.ok()) {
      collect_status = output.status();
    }
  }
  if (!spawn_status.ok()) return spawn_status;
  if (!collect_status.ok()) return collect_status;
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  const double cpu_seconds = ProcessCpuSeconds() + ChildrenCpuSeconds() - cpu_before;

  LoadResult result;
  double answered_total = 0;
  for (const std::string& output : outputs) {
    const std::optional<double> answered = TallyValue(output, "answered");
    const std::optional<double> failed = TallyValue(output, "failed");
    const std::optional<double> qps = TallyValue(output, "qps");
    const std::optional<double> p50 = TallyValue(output, "p50_ms");
    const std::optional<double> p99 = TallyValue(output, "p99_ms");
    if (!answered || !failed || !qps || !p50 || !p99) {
      return absl::InternalError(absl::StrCat("no tally in the load process's output: ", output));
    }
    answered_total += *answered;
    result.failures += static_cast<uint64_t>(*failed);
    result.qps += *qps;  // the processes' windows overlap: their rates add up
    // The processes' latencies are not pooled: the largest of their medians and 99th
    // percentiles bound the pooled ones from above (at most 1% of each process's calls, so at
    // most 1% of all, took longer than the largest p99; likewise for the median).
    result.p50_ms = std::max(result.p50_ms, *p50);
    result.p99_ms = std::max(result.p99_ms, *p99);
  }
  result.calls = static_cast<uint64_t>(answered_total);
  result.seconds = result.qps > 0 ? answered_total / result.qps : 0;
  result.cpu_us_per_call = answered_total > 0 ? cpu_seconds * 1e6 / answered_total : 0;
  result.cores_busy = wall_seconds > 0 ? cpu_seconds / wall_seconds : 0;
  if (result.failures > 0) result.first_error = "see the load processes' stderr";
  return result;
}

}  // namespace probity::bench
