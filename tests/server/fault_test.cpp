// Faults under load: eight `probity shard` servers over a small gallery (8 shards, each held by
// two servers), one router (in this process, over loopback gRPC) and client threads searching
// through the client library (real gRPC) while servers are killed (SIGKILL), stopped (SIGSTOP),
// slowed (a 200 ms delaying TCP proxy, since loopback has no netem here) and restarted, then both
// replicas of a shard taken down. At the end every answered search has its ledger entry with
// the candidates that were sent, failed searches say they charged nothing, the ledger verifies,
// and a restarted router rebuilds the same budgets from it. A damaged shard file is refused at
// load. Runs on loopback ports (no network namespaces: they need root).
//
// PROBITY_FAULT_CLIENTS (default 4) and PROBITY_FAULT_SEARCHES (per client and phase, default
// 25) size the load; bench/server/faults.sh runs this scenario longer and prints its phases.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "delay_proxy.h"
#include "probity/client/call_status.h"
#include "probity/client/search_client.h"
#include "probity/common/file_read.h"
#include "probity/ledger/reader.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/search.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

constexpr int kServers = 8;  // server i holds shards i and i+1 (mod 8)
constexpr int kProxiedServer = 4;
constexpr int kDelayMs = 200;
constexpr auto kClientDeadline = std::chrono::seconds(2);

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && std::atoi(value) > 0 ? std::atoi(value) : fallback;
}

struct Answered {
  std::vector<int64_t> ids;  // candidates of the one query
  bool partial = false;
};

struct PhaseStats {
  std::string name;
  int attempted = 0;
  int answered = 0;
  int partial = 0;
  int failed = 0;
  std::vector<double> latencies_ms;  // of answered searches
  std::vector<std::string> errors;

  double Percentile(double p) const {
    if (latencies_ms.empty()) return 0;
    std::vector<double> sorted = latencies_ms;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
  }
  std::string Report() const {
    std::ostringstream out;
    out << "phase " << name << ": attempted " << attempted << " answered " << answered
        << " partial " << partial << " failed " << failed << " p50 " << Percentile(0.5)
        << " ms p99 " << Percentile(0.99) << " ms";
    if (!errors.empty()) out << " (first error: " << errors[0] << ")";
    return out.str();
  }
};

class FaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = MakeWorld(kServers).release(); }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }

  void TearDown() override {
    for (auto& [server, process] : servers_) process->Signal(SIGCONT);
  }

  // Starts `probity shard` number i (holding shards i and i+1) on `listen`.
  void StartServer(int i, const std::string& listen = "127.0.0.1:0") {
    ServerConfig config = world_->config;
    config.listen = listen;
    config.collections[0].shards = {i, (i + 1) % kServers};
    const auto name = "shard-" + std::to_string(i);
    const auto config_file = world_->dir->path() / (name + ".json");
    std::ofstream(config_file) << ConfigToJson(config);
    const auto port_file = world_->dir->path() / (name + ".port");
    std::filesystem::remove(port_file);
    servers_[i] = std::make_unique<ChildProcess>(
        std::vector<std::string>{ProbityBinary().string(), "shard", "--config",
                                 config_file.string(), "--port-file", port_file.string()},
        world_->dir->path() / (name + ".log"));
  }

  int WaitForServer(int i) {
    const auto name = "shard-" + std::to_string(i);
    const int port = WaitForPortFile(world_->dir->path() / (name + ".port"));
    EXPECT_GT(port, 0)
        << common::ReadFileToString(world_->dir->path() / (name + ".log")).value_or("");
    return port;
  }

  void StartRouter() {
    auto router = Server::StartRouter(router_config_);
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = std::move(*router);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(router_->port()),
                                       grpc::InsecureChannelCredentials());
    search_ = std::make_unique<client::SearchClient>(channel);
    admin_ = v1::Admin::NewStub(channel);
  }

  v1::SearchRequest Request(int query, bool allow_partial) const {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(10);
    request.set_nprobe(4);
    request.set_allow_partial(allow_partial);
    const int q = query % static_cast<int>(world_->gallery.query_labels.size());
    const float* begin = world_->gallery.queries.data() + q * world_->gallery.dim;
    request.add_queries()->mutable_values()->Add(begin, begin + world_->gallery.dim);
    return request;
  }

  grpc::Status Search(const std::string& token, const v1::SearchRequest& request,
                      v1::SearchResponse* response, uint64_t* ledger_index = nullptr) {
    std::optional<uint64_t> entry;
    const grpc::Status status = SearchAsGrpcStatus(
        *search_, token, request, absl::FromChrono(kClientDeadline), response, &entry);
    if (ledger_index != nullptr && entry.has_value()) *ledger_index = *entry;
    return status;
  }

  // Searches from `clients` threads, `searches` each (with `stop`: until it is set), recording
  // every answer.
  PhaseStats RunLoad(const std::string& name, bool allow_partial,
                     const std::atomic<bool>* stop = nullptr) {
    PhaseStats stats;
    stats.name = name;
    std::mutex mutex;
    std::vector<std::thread> clients;
    for (int c = 0; c < clients_; ++c) {
      clients.emplace_back([&, c] {
        for (int n = 0; stop ? !stop->load() : n < searches_; ++n) {
          v1::SearchResponse response;
          const auto started = std::chrono::steady_clock::now();
          const grpc::Status status =
              Search(token_, Request(c * 1000 + n, allow_partial), &response);
          const double ms =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                  .count();
          std::lock_guard lock(mutex);
          ++stats.attempted;
          if (!status.ok()) {
            ++stats.failed;
            stats.errors.push_back(std::to_string(status.error_code()) + " " +
                                   status.error_message());
            continue;
          }
          ++stats.answered;
          stats.latencies_ms.push_back(ms);
          const bool partial = response.coverage().partial();
          stats.partial += partial ? 1 : 0;
          Answered answer{{}, partial};
          for (const auto& candidate : response.results(0).candidates()) {
            answer.ids.push_back(candidate.id());
          }
          // Hedged duplicates are merged once: no id twice in one answer.
          EXPECT_EQ(std::set<int64_t>(answer.ids.begin(), answer.ids.end()).size(),
                    answer.ids.size());
          EXPECT_TRUE(answered_.emplace(response.receipt().entry_index(), answer).second);
        }
      });
    }
    for (auto& client : clients) client.join();
    std::cout << stats.Report() << std::endl;
    return stats;
  }

  v1::StatsResponse Stats() {
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kOperatorToken);
    v1::StatsResponse stats;
    EXPECT_TRUE(admin_->Stats(&context, v1::StatsRequest(), &stats).ok());
    return stats;
  }

  v1::ShardServerStats ServerStats(const std::string& address) {
    const v1::StatsResponse stats = Stats();
    for (const v1::ShardServerStats& server : stats.shard_servers()) {
      if (server.server() == address) return server;
    }
    ADD_FAILURE() << "no stats for " << address;
    return {};
  }

  static inline TestWorld* world_ = nullptr;
  std::map<int, std::unique_ptr<ChildProcess>> servers_;
  std::vector<std::string> addresses_;  // as the router knows them (server 4: its proxy)
  std::unique_ptr<DelayProxy> proxy_;
  ServerConfig router_config_;
  std::unique_ptr<Server> router_;
  std::unique_ptr<client::SearchClient> search_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::string token_;
  const int clients_ = EnvInt("PROBITY_FAULT_CLIENTS", 4);
  const int searches_ = EnvInt("PROBITY_FAULT_SEARCHES", 25);
  std::map<uint64_t, Answered> answered_;  // ledger entry index -> what the client got
};

TEST_F(FaultTest, SearchesSurviveKilledStoppedSlowAndRestartedShardServers) {
  for (int i = 0; i < kServers; ++i) StartServer(i);
  std::vector<int> ports(kServers);
  for (int i = 0; i < kServers; ++i) ports[i] = WaitForServer(i);
  for (int port : ports) ASSERT_GT(port, 0);
  proxy_ = std::make_unique<DelayProxy>(ports[kProxiedServer]);
  ASSERT_GT(proxy_->port(), 0);
  for (int i = 0; i < kServers; ++i) {
    addresses_.push_back("127.0.0.1:" +
                         std::to_string(i == kProxiedServer ? proxy_->port() : ports[i]));
  }
  router_config_ = world_->config;
  router_config_.collections.clear();
  router_config_.shard_servers = addresses_;
  // shard_deadline_ms stays at its default (5 s, more than the clients' 2 s deadline): without
  // hedging a stopped server would fail every search that asked it first.
  router_config_.ledger.dir = "fault-ledger";
  router_config_.state_dir = "fault-state";
  StartRouter();
  ASSERT_NE(router_, nullptr);
  warrant::Claims claims = GoodClaims();
  claims.max_queries = 1'000'000;
  token_ = Issue(*world_, claims);

  // Everything up: full coverage, and the router learns the servers' latency.
  PhaseStats up = RunLoad("all-up", false);
  EXPECT_EQ(up.failed, 0) << up.Report();
  EXPECT_EQ(up.partial, 0);

  // SIGKILL: every shard of the dead server has a replica, so no search fails.
  servers_.at(0)->Signal(SIGKILL);
  servers_.at(0)->Wait();
  PhaseStats killed = RunLoad("sigkill-server-0", false);
  EXPECT_EQ(killed.failed, 0) << killed.Report();
  EXPECT_EQ(killed.partial, 0);

  // SIGSTOP: the stopped server accepts connections but never answers; hedges to the replica
  // answer within the client's 2 s deadline (the attempt timeout is 5 s; the hedge delay is
  // derived from observed latency, 10 ms at least).
  const uint64_t hedges_before_stop = Stats().shard_hedges();
  const uint64_t overtaken_before_stop = ServerStats(addresses_[2]).overtaken();
  servers_.at(2)->Signal(SIGSTOP);
  PhaseStats stopped = RunLoad("sigstop-server-2", false);
  const v1::ShardServerStats stopped_stats = ServerStats(addresses_[2]);
  servers_.at(2)->Signal(SIGCONT);
  EXPECT_EQ(stopped.failed, 0) << stopped.Report();
  EXPECT_EQ(stopped.partial, 0);
  EXPECT_GT(Stats().shard_hedges(), hedges_before_stop);
  EXPECT_GT(stopped_stats.overtaken(), overtaken_before_stop);

  // A 200 ms link: the median search does not pay it (the replica answers first and the slow
  // server loses its traffic), though the slow server is still probed now and then.
  const uint64_t overtaken_before_delay = ServerStats(addresses_[kProxiedServer]).overtaken();
  proxy_->SetDelayMs(kDelayMs);
  PhaseStats slow = RunLoad("delay-200ms-server-4", false);
  proxy_->SetDelayMs(0);
  EXPECT_EQ(slow.failed, 0) << slow.Report();
  EXPECT_LT(slow.Percentile(0.5), kDelayMs) << slow.Report();
  EXPECT_GT(ServerStats(addresses_[kProxiedServer]).overtaken(), overtaken_before_delay);

  // Restart the killed server on its port: it takes work again (its answered count grows) within
  // the reconnect and back-off bounds (1 s each), with clients searching meanwhile.
  const uint64_t answered_before = ServerStats(addresses_[0]).answered();
  StartServer(0, addresses_[0]);
  ASSERT_EQ(WaitForServer(0), ports[0]);
  const auto restarted = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  auto load =
      std::async(std::launch::async, [&] { return RunLoad("restart-server-0", false, &stop); });
  double seconds_to_work = -1;
  while (std::chrono::steady_clock::now() - restarted < std::chrono::seconds(30)) {
    if (ServerStats(addresses_[0]).answered() > answered_before) {
      seconds_to_work =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - restarted).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop.store(true);
  PhaseStats restart = load.get();
  std::cout << "restarted server took work again after " << seconds_to_work << " s" << std::endl;
  EXPECT_EQ(restart.failed, 0) << restart.Report();
  ASSERT_GE(seconds_to_work, 0) << "the restarted server got no work in 30 s";
  EXPECT_LT(seconds_to_work, 5.0);  // bounds sum to ~2 s; the margin is for a loaded CI machine

  // Both replicas of shard 7 (servers 6 and 7) down: honest partial coverage when allowed...
  servers_.at(6)->Signal(SIGKILL);
  servers_.at(7)->Signal(SIGKILL);
  servers_.at(6)->Wait();
  servers_.at(7)->Wait();
  PhaseStats partial = RunLoad("shard-7-down-partial", true);
  EXPECT_EQ(partial.failed, 0) << partial.Report();
  EXPECT_EQ(partial.partial, partial.answered);
  {
    v1::SearchResponse response;
    ASSERT_TRUE(Search(token_, Request(0, true), &response).ok());
    EXPECT_EQ(response.coverage().shards_answered(), 7u);
    EXPECT_EQ(response.coverage().shards_total(), 8u);
    ASSERT_EQ(response.coverage().failures_size(), 1);
    const v1::ShardFailure& failure = response.coverage().failures(0);
    EXPECT_EQ(failure.shard(), 7u);
    EXPECT_EQ(failure.code(), "UNAVAILABLE");
    EXPECT_EQ(std::set<std::string>(failure.servers().begin(), failure.servers().end()),
              (std::set<std::string>{addresses_[6], addresses_[7]}));
    for (const auto& candidate : response.results(0).candidates()) {
      EXPECT_NE(candidate.shard(), 7u);
    }
    EXPECT_TRUE(answered_.emplace(response.receipt().entry_index(), Answered{{}, true}).second);
    for (const auto& c : response.results(0).candidates()) {
      answered_[response.receipt().entry_index()].ids.push_back(c.id());
    }
  }

  // ...UNAVAILABLE otherwise, with the coverage as data, and nothing charged: a warrant of 4
  // queries survives 5 failed searches, then answers 3 partial ones.
  warrant::Claims small = GoodClaims();
  small.max_queries = 4;
  const std::string small_token = Issue(*world_, small);
  std::vector<uint64_t> failed_entries;
  for (int n = 0; n < 5; ++n) {
    // The failure as the client library reads it: the code, and the SearchFailure and ledger
    // entry the router attached.
    const absl::StatusOr<v1::SearchResponse> answer =
        search_->Search(Request(n, false), small_token, absl::FromChrono(kClientDeadline));
    ASSERT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
    const std::optional<uint64_t> index = client::LedgerEntryOf(answer.status());
    ASSERT_TRUE(index.has_value());
    const absl::StatusOr<v1::SearchFailure> failure = client::FailureOf(answer.status());
    ASSERT_TRUE(failure.ok()) << failure.status();
    EXPECT_EQ(failure->ledger_entry_index(), *index);
    EXPECT_EQ(failure->queries_charged(), 0u);
    EXPECT_EQ(failure->coverage().shards_answered(), 7u);
    EXPECT_EQ(failure->coverage().shards_total(), 8u);
    ASSERT_EQ(failure->coverage().failures_size(), 1);
    EXPECT_EQ(failure->coverage().failures(0).shard(), 7u);
    failed_entries.push_back(*index);
  }
  v1::LedgerReceipt last_receipt;
  for (int n = 0; n < 3; ++n) {
    v1::SearchResponse response;
    const grpc::Status status = Search(small_token, Request(n, true), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    last_receipt = response.receipt();
    answered_[response.receipt().entry_index()] = Answered{{}, true};
    for (const auto& c : response.results(0).candidates()) {
      answered_[response.receipt().entry_index()].ids.push_back(c.id());
    }
  }

  // Per-server counters: the dead servers' failures are counted, and so are hedges.
  const v1::StatsResponse stats = Stats();
  EXPECT_EQ(stats.shard_servers_size(), kServers);
  EXPECT_GE(ServerStats(addresses_[6]).failures(), 1u);
  EXPECT_GE(ServerStats(addresses_[7]).failures(), 1u);
  EXPECT_GE(stats.shard_retries(), 1u);

  // The ledger: stop the router, then check every answer against its entry.
  const std::filesystem::path ledger_dir = world_->dir->path() / router_config_.ledger.dir;
  router_.reset();
  std::map<uint64_t, v1::LedgerEntry> entries;
  ASSERT_TRUE(ledger::ReadEntries(ledger_dir, 0, [&](uint64_t index, std::string_view bytes) {
                v1::LedgerEntry entry;
                EXPECT_TRUE(entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
                entries[index] = entry;
                return true;
              }).ok());
  for (const auto& [index, answer] : answered_) {
    ASSERT_TRUE(entries.count(index)) << "answered search without ledger entry " << index;
    const v1::LedgerEntry& entry = entries[index];
    EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_SEARCH);
    EXPECT_EQ(entry.outcome(),
              answer.partial ? v1::OUTCOME_ANSWERED_PARTIAL : v1::OUTCOME_ANSWERED);
    EXPECT_EQ(entry.query_count(), 1u);
    std::vector<int64_t> ids;
    for (const auto& candidate : entry.queries(0).candidates()) ids.push_back(candidate.id());
    EXPECT_EQ(ids, answer.ids) << "entry " << index;
  }
  uint64_t small_charged = 0;
  for (uint64_t index : failed_entries) {
    const v1::LedgerEntry& entry = entries[index];
    EXPECT_EQ(entry.outcome(), v1::OUTCOME_FAILED);
    EXPECT_EQ(entry.query_count(), 0u);  // what RestoreBudgets adds up: nothing
    EXPECT_EQ(entry.queries_received(), 1u);
    EXPECT_EQ(entry.coverage().shards_answered(), 7u);
    EXPECT_EQ(entry.queries(0).candidates_size(), 0);
  }
  for (const auto& [index, entry] : entries) {
    if (entry.warrant_id() == small.jti) small_charged += entry.query_count();
  }
  EXPECT_EQ(small_charged, 3u);
  // The whole ledger re-hashes and the last receipt's signed checkpoint verifies against it.
  const auto checkpoint_file = world_->dir->path() / "fault-checkpoint.txt";
  const auto key_file = world_->dir->path() / "fault-verifier.key";
  std::ofstream(checkpoint_file) << last_receipt.signed_checkpoint();
  std::ofstream(key_file) << last_receipt.verifier_key();
  int status = 0;
  FILE* pipe =
      popen((ProbityBinary().string() + " ledger verify --dir " + ledger_dir.string() +
             " --checkpoint " + checkpoint_file.string() + " --key " + key_file.string() + " 2>&1")
                .c_str(),
            "r");
  ASSERT_NE(pipe, nullptr);
  std::string verified;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) verified.append(buffer, n);
  status = pclose(pipe);
  EXPECT_EQ(status, 0) << verified;
  EXPECT_NE(verified.find("checkpoints verified: 1 of 1"), std::string::npos) << verified;

  // A restarted router rebuilds the budget from the ledger: one query of the small warrant is
  // left (the failed searches charged nothing), then it is spent. (Servers 6 and 7 come back
  // first: a router waits up to shard_deadline_ms at start for each server it cannot reach.)
  StartServer(6, addresses_[6]);
  StartServer(7, addresses_[7]);
  ASSERT_EQ(WaitForServer(6), ports[6]);
  ASSERT_EQ(WaitForServer(7), ports[7]);
  StartRouter();
  ASSERT_NE(router_, nullptr);
  v1::SearchResponse response;
  grpc::Status last = Search(small_token, Request(0, true), &response);
  EXPECT_TRUE(last.ok()) << last.error_message();
  last = Search(small_token, Request(1, true), &response);
  EXPECT_EQ(last.error_code(), grpc::StatusCode::PERMISSION_DENIED) << last.error_message();
  EXPECT_NE(last.error_message().find("budget"), std::string::npos) << last.error_message();
}

// gRPC gives each connection attempt GRPC_ARG_MIN_RECONNECT_BACKOFF_MS (or the current backoff,
// if longer) to reach a working HTTP/2 connection. The router once set it to 100 ms, meaning
// the first backoff: over a link where the handshake takes longer, every early attempt timed
// out and started over on a new connection, until the backoff outgrew the handshake.
TEST_F(FaultTest, TheRouterReachesAShardServerOverASlowLinkOnItsFirstConnection) {
  StartServer(0);
  const int port = WaitForServer(0);
  ASSERT_GT(port, 0);
  proxy_ = std::make_unique<DelayProxy>(port);
  ASSERT_GT(proxy_->port(), 0);
  proxy_->SetDelayMs(150);  // each way: the handshake needs at least 300 ms
  router_config_ = world_->config;
  router_config_.collections.clear();
  const std::string address = "127.0.0.1:" + std::to_string(proxy_->port());
  router_config_.shard_servers = {address};
  router_config_.ledger.dir = "slow-link-ledger";
  router_config_.state_dir = "slow-link-state";
  StartRouter();  // asks the server what it holds, over this link
  ASSERT_NE(router_, nullptr);
  EXPECT_EQ(proxy_->connections(), 1u);
  EXPECT_EQ(ServerStats(address).server(), address);  // and it is among the router's replicas
}

TEST_F(FaultTest, DamagedShardFileIsRefusedAtLoadByItsSha256) {
  const std::filesystem::path damaged = world_->dir->path() / "damaged-gen";
  std::filesystem::copy(world_->generation_dir, damaged, std::filesystem::copy_options::recursive);
  std::filesystem::permissions(damaged, std::filesystem::perms::owner_all);
  const auto manifest =
      nlohmann::json::parse(common::ReadFileToString(damaged / "manifest.json").value_or(""));
  const std::string shard_file = manifest.at("shards").at(3).at("file").get<std::string>();
  for (const auto& file : std::filesystem::directory_iterator(damaged)) {
    std::filesystem::permissions(
        file.path(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  {
    std::fstream file(damaged / shard_file, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(-64, std::ios::end);
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(-64, std::ios::end);
    byte = static_cast<char>(byte ^ 0x5a);
    file.write(&byte, 1);
  }
  ServerConfig config = world_->config;
  config.collections[0].generation_dir = damaged;
  config.collections[0].shards = {3};
  config.state_dir = "damaged-state";
  const auto config_file = world_->dir->path() / "damaged.json";
  std::ofstream(config_file) << ConfigToJson(config);
  ChildProcess shard({ProbityBinary().string(), "shard", "--config", config_file.string(),
                      "--port-file", (world_->dir->path() / "damaged.port").string()},
                     world_->dir->path() / "damaged.log");
  EXPECT_NE(shard.Wait(), 0);
  const std::string log =
      common::ReadFileToString(world_->dir->path() / "damaged.log").value_or("");
  EXPECT_NE(log.find("SHA-256"), std::string::npos) << log;
  EXPECT_NE(log.find(shard_file), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(world_->dir->path() / "damaged.port"));
}

}  // namespace
}  // namespace probity::service::testing
