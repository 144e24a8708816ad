// Whole processes over loopback: `probity serve --demo` with `probity query`, a router over
// three `probity shard` servers (plus a replica) with shards killed under it, and the Python
// grpcio client with server reflection.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <thread>

#include "absl/strings/match.h"
#include "probity/client/call_status.h"
#include "probity/client/search_client.h"
#include "probity/common/file_read.h"
#include "probity/index/embedding_io.h"
#include "probity/index/generation.h"
#include "probity/ledger/reader.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/ledger_service.grpc.pb.h"
#include "probity/v1/search.grpc.pb.h"
#include "probity/v1/shard.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

// Runs a command and returns its stdout; the exit status goes to *status.
std::string RunCommand(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int raw = pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return output;
}

// Candidate ids per query from the offline `probity search` CLI (no warrant, no ledger).
std::vector<std::vector<int64_t>> OfflineProbitySearch(const TestWorld& world, int count, int k,
                                                       int nprobe) {
  const auto queries_file = world.dir->path() / "offline-queries.fvecs";
  EXPECT_TRUE(index::WriteFloatMatrix(
                  queries_file, world.gallery.dim,
                  std::span<const float>(world.gallery.queries.data(), count * world.gallery.dim))
                  .ok());
  int status = 0;
  const std::string output = RunCommand(
      ProbityBinary().string() + " search --generation " + world.generation_dir.string() +
          " --queries " + queries_file.string() + " --row 0 --count " + std::to_string(count) +
          " --k " + std::to_string(k) + " --nprobe " + std::to_string(nprobe),
      &status);
  EXPECT_EQ(status, 0) << output;
  std::vector<std::vector<int64_t>> ids(count);
  std::istringstream lines(output);
  std::string line;
  std::getline(lines, line);  // header: query rank id score shard
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    int query = 0, rank = 0;
    int64_t id = 0;
    if (fields >> query >> rank >> id && query >= 0 && query < count) {
      EXPECT_EQ(rank, static_cast<int>(ids[query].size()) + 1) << line;
      ids[query].push_back(id);
    }
  }
  return ids;
}

TEST(ProcessTest, EmbeddedServiceEqualsOfflineProbitySearchIdForId) {
  auto world = MakeWorld(3);
  auto server = Server::StartRouter(world->config);
  ASSERT_TRUE(server.ok()) << server.status();
  auto search = client::SearchClient::Connect("127.0.0.1:" + std::to_string((*server)->port()), {});
  ASSERT_TRUE(search.ok()) << search.status();
  v1::SearchRequest request;
  request.set_collection(kCollection);
  request.set_k(10);
  request.set_nprobe(8);
  const int count = static_cast<int>(world->gallery.query_labels.size());
  for (int q = 0; q < count; ++q) {
    const float* begin = world->gallery.queries.data() + q * world->gallery.dim;
    request.add_queries()->mutable_values()->Add(begin, begin + world->gallery.dim);
  }
  const absl::StatusOr<v1::SearchResponse> response =
      search->Search(request, Issue(*world, GoodClaims()));
  ASSERT_TRUE(response.ok()) << response.status();

  const auto offline = OfflineProbitySearch(*world, count, 10, 8);
  ASSERT_EQ(response->results_size(), count);
  for (int q = 0; q < count; ++q) {
    std::vector<int64_t> served;
    for (const auto& candidate : response->results(q).candidates()) {
      served.push_back(candidate.id());
    }
    EXPECT_EQ(served, offline[q]) << "query " << q;
    EXPECT_EQ(served.size(), 10u);
  }
}

TEST(ProcessTest, DemoServesAndProbityQueryPrintsCandidatesReceiptAndCoverage) {
  TempDir dir;
  const auto data = dir.path() / "demo";
  const auto port_file = dir.path() / "port";
  ChildProcess serve(
      {ProbityBinary().string(), "serve", "--demo", "--demo-identities", "200", "--data-dir",
       data.string(), "--listen", "127.0.0.1:0", "--port-file", port_file.string()},
      dir.path() / "serve.log");
  const int port = WaitForPortFile(port_file, 120);
  ASSERT_GT(port, 0) << common::ReadFileToString(dir.path() / "serve.log").value_or("");
  const std::string first_start_log =
      common::ReadFileToString(dir.path() / "serve.log").value_or("");
  EXPECT_NE(first_start_log.find("probity query --server"), std::string::npos);
  // The demo's index spec suits its gallery size: FAISS trains it without complaint.
  EXPECT_EQ(first_start_log.find("training points"), std::string::npos) << first_start_log;

  int status = 0;
  const std::string query =
      ProbityBinary().string() + " query --server 127.0.0.1:" + std::to_string(port) +
      " --collection demo --warrant " + (data / "demo-warrant.jwt").string() + " --embedding " +
      (data / "demo-queries.fvecs").string() + " --row 0 --k 5";
  const std::string text = RunCommand(query, &status);
  EXPECT_EQ(status, 0) << text;
  EXPECT_NE(text.find("rank"), std::string::npos) << text;
  EXPECT_NE(text.find("coverage: 2/2 shards"), std::string::npos) << text;
  EXPECT_NE(text.find("ledger entry: 0"), std::string::npos) << text;
  EXPECT_NE(text.find("probity-demo/ledger"), std::string::npos) << text;

  const std::string json_text = RunCommand(query + " --json", &status);
  ASSERT_EQ(status, 0) << json_text;
  const auto response = nlohmann::json::parse(json_text);
  EXPECT_EQ(response["results"][0]["candidates"].size(), 5u);
  EXPECT_EQ(response["receipt"]["entry_index"], "1");  // uint64 is a string in proto JSON

  // A forged warrant is refused with exit code 1 and the refusal's reason.
  std::ofstream(dir.path() / "forged.jwt") << "eyJhbGciOiJub25lIn0.e30.";
  const std::string refused =
      RunCommand(ProbityBinary().string() + " query --server 127.0.0.1:" + std::to_string(port) +
                     " --warrant " + (dir.path() / "forged.jwt").string() + " --embedding " +
                     (data / "demo-queries.fvecs").string() + " --row 0 2>&1",
                 &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(refused.find("algorithm_not_allowed"), std::string::npos) << refused;

  serve.Signal(SIGTERM);  // graceful drain, then a clean exit
  EXPECT_EQ(serve.Wait(), 0);
}

// Only the --demo flag relaxes the transport rules: a config file that says "demo" is refused,
// and without the flag plaintext off loopback is refused. Both stop before anything listens.
TEST(ProcessTest, ServeRefusesPlaintextOffLoopbackWithoutTheDemoFlagWhateverTheFileSays) {
  TempDir dir;
  const auto config_file = dir.path() / "config.json";
  const std::string serve =
      ProbityBinary().string() + " serve --config " + config_file.string() + " 2>&1";
  int status = 0;
  std::ofstream(config_file)
      << R"({"listen": "0.0.0.0:0", "plaintext": true, "demo": true, "deployment": "d"})";
  std::string output = RunCommand(serve, &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find(R"("demo" is not a config key)"), std::string::npos) << output;

  std::ofstream(config_file) << R"({"listen": "0.0.0.0:0", "plaintext": true, "deployment": "d"})";
  output = RunCommand(serve, &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("plaintext is refused on the non-loopback address 0.0.0.0:0"),
            std::string::npos)
      << output;
}

// The real ledger runs out of space: `probity serve` under a file-size limit (RLIMIT_FSIZE binds
// root too, unlike a read-only directory), with SIGXFSZ ignored so that the ledger's write gets
// EFBIG once its segment reaches the limit. From then on every search is refused with no
// candidates (the ledger library refuses every append after a write error), and everything that
// was answered before has its entry, which still verifies.
TEST(ProcessTest, SearchWhoseRealLedgerRunsOutOfSpaceIsNotAnsweredAndEarlierEntriesVerify) {
  auto world = MakeWorld(2);
  const auto dir = world->dir->path();
  const auto config_file = dir / "serve.json";
  std::ofstream(config_file) << ConfigToJson(world->config);
  const auto port_file = dir / "serve.port";
  // `ulimit -f` counts 512-byte blocks: 16 blocks hold a few SEARCH entries of one query.
  ChildProcess serve(
      {"/bin/sh", "-c", "trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"", ProbityBinary().string(),
       "serve", "--config", config_file.string(), "--port-file", port_file.string()},
      dir / "serve.log");
  const int port = WaitForPortFile(port_file, 120);
  ASSERT_GT(port, 0) << common::ReadFileToString(dir / "serve.log").value_or("");
  auto search = client::SearchClient::Connect("127.0.0.1:" + std::to_string(port), {});
  ASSERT_TRUE(search.ok()) << search.status();
  const std::string token = Issue(*world, GoodClaims());

  std::map<uint64_t, std::vector<int64_t>> answered;  // entry index -> candidate ids
  v1::SearchResponse last_answer;
  int failures = 0;
  constexpr int kSearches = 60;
  for (int attempt = 0; attempt < kSearches; ++attempt) {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(10);
    request.set_nprobe(8);
    const int q = attempt % static_cast<int>(world->gallery.query_labels.size());
    const float* begin = world->gallery.queries.data() + q * world->gallery.dim;
    request.add_queries()->mutable_values()->Add(begin, begin + world->gallery.dim);
    const absl::StatusOr<v1::SearchResponse> answer = search->Search(request, token);
    if (answer.ok()) {
      const v1::SearchResponse& response = *answer;
      // Once an append has failed, no search is answered again.
      ASSERT_EQ(failures, 0) << "search " << attempt << " answered after a ledger write error";
      ASSERT_EQ(response.results_size(), 1);
      EXPECT_EQ(response.results(0).candidates_size(), 10);
      std::vector<int64_t> ids;
      for (const auto& candidate : response.results(0).candidates()) ids.push_back(candidate.id());
      EXPECT_TRUE(answered.emplace(response.receipt().entry_index(), ids).second);
      last_answer = response;
      continue;
    }
    ++failures;
    // A failed call carries no response (no candidates, no receipt): the StatusOr holds none.
    EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
    EXPECT_TRUE(absl::StrContains(answer.status().message(), "ledger")) << answer.status();
  }
  ASSERT_GE(answered.size(), 2u) << common::ReadFileToString(dir / "serve.log").value_or("");
  ASSERT_GT(failures, 0) << "the ledger never reached the file-size limit";
  EXPECT_EQ(answered.size() + failures, static_cast<size_t>(kSearches));

  serve.Signal(SIGTERM);
  serve.Wait();

  // Every answered search is an ANSWERED entry with exactly the candidates that were sent, and
  // no other search entry exists: nothing was answered without an entry, and no entry claims an
  // answer that was not sent.
  const auto ledger_dir = dir / "ledger";
  std::map<uint64_t, std::vector<int64_t>> recorded;
  ASSERT_TRUE(ledger::ReadEntries(ledger_dir, 0, [&](uint64_t index, std::string_view bytes) {
                v1::LedgerEntry entry;
                EXPECT_TRUE(entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
                if (entry.kind() != v1::ENTRY_KIND_SEARCH) return true;
                EXPECT_EQ(entry.outcome(), v1::OUTCOME_ANSWERED) << index;
                std::vector<int64_t> ids;
                for (const auto& candidate : entry.queries(0).candidates()) {
                  ids.push_back(candidate.id());
                }
                recorded[index] = ids;
                return true;
              }).ok());
  EXPECT_EQ(recorded, answered);

  // The acknowledged entries verify, and so does the checkpoint of the last answer.
  std::ofstream(dir / "checkpoint.txt") << last_answer.receipt().signed_checkpoint();
  std::ofstream(dir / "verifier.key") << last_answer.receipt().verifier_key();
  int status = 0;
  const std::string verified = RunCommand(
      ProbityBinary().string() + " ledger verify --dir " + ledger_dir.string() + " --checkpoint " +
          (dir / "checkpoint.txt").string() + " --key " + (dir / "verifier.key").string() + " 2>&1",
      &status);
  EXPECT_EQ(status, 0) << verified;
  EXPECT_NE(verified.find("checkpoints verified: 1 of 1"), std::string::npos) << verified;
  EXPECT_NE(verified.find("OK"), std::string::npos) << verified;
  auto reader = ledger::LedgerReader::Open(ledger_dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->Size(), answered.rbegin()->first + 1);

  // Space freed (no limit), restarted: the server reopens the ledger past the torn tail and
  // answers again, with the next entry after the last acknowledged one.
  std::filesystem::remove(port_file);
  ChildProcess restarted({ProbityBinary().string(), "serve", "--config", config_file.string(),
                          "--port-file", port_file.string()},
                         dir / "restarted.log");
  const int restarted_port = WaitForPortFile(port_file, 120);
  ASSERT_GT(restarted_port, 0) << common::ReadFileToString(dir / "restarted.log").value_or("");
  auto again = client::SearchClient::Connect("127.0.0.1:" + std::to_string(restarted_port), {});
  ASSERT_TRUE(again.ok()) << again.status();
  v1::SearchRequest request;
  request.set_collection(kCollection);
  request.set_k(10);
  request.add_queries()->mutable_values()->Add(world->gallery.queries.begin(),
                                               world->gallery.queries.begin() + world->gallery.dim);
  const absl::StatusOr<v1::SearchResponse> response = again->Search(request, token);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->results(0).candidates_size(), 10);
  EXPECT_EQ(response->receipt().entry_index(), answered.rbegin()->first + 1);
}

class ShardedProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { world_ = MakeWorld(3); }

  // Starts `probity shard` holding `shards`; returns its address.
  std::string StartShard(const std::string& name, std::vector<int> shards,
                         const std::string& listen = "127.0.0.1:0") {
    ServerConfig config = world_->config;
    config.listen = listen;
    config.collections[0].shards = std::move(shards);
    const auto config_file = world_->dir->path() / (name + ".json");
    std::ofstream(config_file) << ConfigToJson(config);
    const auto port_file = world_->dir->path() / (name + ".port");
    shard_processes_[name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{ProbityBinary().string(), "shard", "--config",
                                 config_file.string(), "--port-file", port_file.string()},
        world_->dir->path() / (name + ".log"));
    const int port = WaitForPortFile(port_file);
    EXPECT_GT(port, 0)
        << common::ReadFileToString(world_->dir->path() / (name + ".log")).value_or("");
    return "127.0.0.1:" + std::to_string(port);
  }

  v1::SearchRequest Request(bool allow_partial) const {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(10);
    request.set_nprobe(8);
    request.set_allow_partial(allow_partial);
    const int dim = world_->gallery.dim;
    for (int q = 0; q < 4; ++q) {
      const float* begin = world_->gallery.queries.data() + q * dim;
      request.add_queries()->mutable_values()->Add(begin, begin + dim);
    }
    return request;
  }

  std::unique_ptr<TestWorld> world_;
  std::map<std::string, std::unique_ptr<ChildProcess>> shard_processes_;
};

TEST_F(ShardedProcessTest, RouterOverThreeShardServersMergesRetriesAndReportsCoverage) {
  const std::string a = StartShard("a", {0});
  const std::string b = StartShard("b", {1});
  const std::string c = StartShard("c", {2});
  const std::string a_replica = StartShard("a-replica", {0});
  ServerConfig config = world_->config;
  config.collections.clear();
  config.shard_servers = {a, b, c, a_replica};
  config.shard_deadline_ms = 2000;
  auto router = Server::StartRouter(config);
  ASSERT_TRUE(router.ok()) << router.status();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*router)->port()),
                                     grpc::InsecureChannelCredentials());
  const client::SearchClient search(channel);
  auto ledger = v1::Ledger::NewStub(channel);
  const std::string token = Issue(*world_, GoodClaims());
  // Every search, answered or failed, names its ledger entry: an answer in its receipt, a
  // failure in the `probity-ledger-index` trailer.
  auto run = [&](bool allow_partial, v1::SearchResponse* response, uint64_t* ledger_index) {
    absl::StatusOr<v1::SearchResponse> answer = search.Search(Request(allow_partial), token);
    if (answer.ok()) {
      *response = *std::move(answer);
      EXPECT_TRUE(response->has_receipt());
      *ledger_index = response->receipt().entry_index();
      return absl::OkStatus();
    }
    const std::optional<uint64_t> recorded_at = client::LedgerEntryOf(answer.status());
    EXPECT_TRUE(recorded_at.has_value()) << answer.status();
    if (recorded_at) *ledger_index = *recorded_at;
    return answer.status();
  };
  auto entry = [&](uint64_t index) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kAuditorToken);
    v1::GetEntriesRequest request;
    request.set_start(index);
    request.set_count(1);
    v1::GetEntriesResponse response;
    EXPECT_TRUE(ledger->GetEntries(&context, request, &response).ok());
    v1::LedgerEntry parsed;
    EXPECT_EQ(response.entries_size(), 1);
    if (response.entries_size() == 1) parsed.ParseFromString(response.entries(0).entry());
    return parsed;
  };

  // All shards up: the routed answer equals the offline search of the whole generation, both
  // in-process and through the `probity search` CLI.
  const auto offline_cli = OfflineProbitySearch(*world_, 4, 10, 8);
  auto offline = index::LoadGeneration(world_->generation_dir);
  ASSERT_TRUE(offline.ok()) << offline.status();
  index::SearchParams params;
  params.k = 10;
  params.nprobe = 8;
  auto expected = (*offline)->Search(
      std::span<const float>(world_->gallery.queries.data(), 4 * world_->gallery.dim), params);
  ASSERT_TRUE(expected.ok());
  v1::SearchResponse response;
  uint64_t index = 0;
  absl::Status status = run(false, &response, &index);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(response.results_size(), 4);
  for (int q = 0; q < 4; ++q) {
    ASSERT_EQ(response.results(q).candidates_size(), static_cast<int>((*expected)[q].size()));
    std::vector<int64_t> served;
    for (const auto& candidate : response.results(q).candidates()) served.push_back(candidate.id());
    EXPECT_EQ(served, offline_cli[q]) << "query " << q;
    for (int r = 0; r < response.results(q).candidates_size(); ++r) {
      EXPECT_EQ(response.results(q).candidates(r).id(), (*expected)[q][r].id);
      EXPECT_EQ(response.results(q).candidates(r).shard(), (*expected)[q][r].shard);
    }
  }
  EXPECT_EQ(response.coverage().shards_answered(), 3u);

  // Shard 0's first server dies: its replica answers, coverage stays full.
  shard_processes_.erase("a");
  status = run(false, &response, &index);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(response.coverage().shards_answered(), 3u);
  EXPECT_EQ(entry(index).outcome(), v1::OUTCOME_ANSWERED);

  // Shard 2 has no replica: the search fails unless partial results are allowed...
  shard_processes_.erase("c");
  status = run(false, &response, &index);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  v1::LedgerEntry failed = entry(index);
  EXPECT_EQ(failed.kind(), v1::ENTRY_KIND_SEARCH);
  EXPECT_EQ(failed.outcome(), v1::OUTCOME_FAILED);
  EXPECT_EQ(failed.coverage().shards_answered(), 2u);
  EXPECT_EQ(failed.coverage().shards_total(), 3u);
  EXPECT_EQ(failed.queries(0).candidates_size(), 0);

  // ...and with allow_partial it answers from 2 of 3 shards, and the ledger says so.
  v1::SearchResponse partial;
  status = run(true, &partial, &index);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(partial.coverage().shards_answered(), 2u);
  EXPECT_EQ(partial.coverage().shards_total(), 3u);
  EXPECT_TRUE(partial.coverage().partial());
  for (const auto& list : partial.results()) {
    for (const auto& candidate : list.candidates()) EXPECT_NE(candidate.shard(), 2u);
  }
  v1::LedgerEntry recorded = entry(partial.receipt().entry_index());
  EXPECT_EQ(recorded.outcome(), v1::OUTCOME_ANSWERED_PARTIAL);
  EXPECT_EQ(recorded.coverage().shards_answered(), 2u);
  EXPECT_TRUE(recorded.parameters().allow_partial());

  // A shard server drains and exits cleanly on SIGTERM.
  shard_processes_.at("b")->Signal(SIGTERM);
  EXPECT_EQ(shard_processes_.at("b")->Wait(), 0);
}

TEST_F(ShardedProcessTest, ErasureThroughTheRouterReachesEveryReplicaAndSurvivesRestart) {
  const std::string a = StartShard("a", {0, 1});
  const std::string b = StartShard("b", {2});
  const std::string b_replica = StartShard("b-replica", {2});
  ServerConfig config = world_->config;
  config.collections.clear();
  config.shard_servers = {a, b, b_replica};
  auto router = Server::StartRouter(config);
  ASSERT_TRUE(router.ok()) << router.status();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*router)->port()),
                                     grpc::InsecureChannelCredentials());
  const client::SearchClient search(channel);
  auto admin = v1::Admin::NewStub(channel);
  const std::string token = Issue(*world_, GoodClaims());
  auto candidates = [&] {
    const absl::StatusOr<v1::SearchResponse> response = search.Search(Request(false), token);
    EXPECT_TRUE(response.ok()) << response.status();
    std::vector<int64_t> ids;
    if (!response.ok()) return ids;
    for (const auto& list : response->results()) {
      for (const auto& candidate : list.candidates()) ids.push_back(candidate.id());
    }
    return ids;
  };
  // Erase the best candidate of every query, wherever its shard lives.
  std::vector<int64_t> victims;
  {
    const absl::StatusOr<v1::SearchResponse> response = search.Search(Request(false), token);
    ASSERT_TRUE(response.ok()) << response.status();
    for (const auto& list : response->results()) victims.push_back(list.candidates(0).id());
  }
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kOperatorToken);
  v1::EraseRequest erase;
  erase.set_collection(kCollection);
  erase.mutable_ids()->Add(victims.begin(), victims.end());
  erase.set_reason("data-protection request 88");
  v1::EraseResponse erased;
  grpc::Status status = admin->Erase(&context, erase, &erased);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_GE(erased.removed(), static_cast<int64_t>(victims.size()));
  for (int64_t id : candidates()) {
    EXPECT_EQ(std::find(victims.begin(), victims.end(), id), victims.end()) << id;
  }

  // A shard server started afresh from the same state re-applies the journalled erasure.
  shard_processes_.clear();
  const std::string restarted = StartShard("a-again", {0, 1, 2});
  auto shard =
      v1::Shard::NewStub(grpc::CreateChannel(restarted, grpc::InsecureChannelCredentials()));
  for (uint32_t s = 0; s < 3; ++s) {
    grpc::ClientContext shard_context;
    v1::ShardSearchRequest request;
    request.set_collection(kCollection);
    request.set_shard(s);
    request.set_dim(world_->gallery.dim);
    request.set_k(10);
    request.set_nprobe(8);
    request.mutable_queries()->Add(world_->gallery.queries.begin(),
                                   world_->gallery.queries.begin() + 4 * world_->gallery.dim);
    v1::ShardSearchResponse answer;
    ASSERT_TRUE(shard->SearchShard(&shard_context, request, &answer).ok());
    for (const auto& list : answer.results()) {
      for (const auto& hit : list.hits()) {
        EXPECT_EQ(std::find(victims.begin(), victims.end(), hit.id()), victims.end()) << hit.id();
      }
    }
  }
}

int UnusedLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

TEST_F(ShardedProcessTest, ShardServerStartedAfterTheRouterJoinsTheRoutes) {
  const std::string a = StartShard("a", {0});
  const std::string b = StartShard("b", {1});
  const int late_port = UnusedLoopbackPort();
  ASSERT_GT(late_port, 0);
  ServerConfig config = world_->config;
  config.collections.clear();
  config.shard_servers = {a, b, "127.0.0.1:" + std::to_string(late_port)};
  config.shard_deadline_ms = 500;
  config.key_reload_seconds = 1;
  auto router = Server::StartRouter(config);
  ASSERT_TRUE(router.ok()) << router.status();
  auto search = client::SearchClient::Connect("127.0.0.1:" + std::to_string((*router)->port()), {});
  ASSERT_TRUE(search.ok()) << search.status();
  const std::string token = Issue(*world_, GoodClaims());
  auto coverage = [&] {
    const absl::StatusOr<v1::SearchResponse> response = search->Search(Request(true), token);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->coverage().shards_answered() : 0u;
  };
  EXPECT_EQ(coverage(), 2u);

  // The third server comes up later on the address the router was given; the router's
  // background discovery adds it, and searches get full coverage without a restart.
  StartShard("late", {2}, "127.0.0.1:" + std::to_string(late_port));
  uint32_t answered = 0;
  for (int attempt = 0; attempt < 100 && answered < 3; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    answered = coverage();
  }
  EXPECT_EQ(answered, 3u);
}

TEST(PythonClientTest, ListsServicesByReflectionAndSearches) {
  auto world = MakeWorld(2);
  auto server = Server::StartRouter(world->config);
  ASSERT_TRUE(server.ok()) << server.status();
  const auto warrant_file = world->dir->path() / "warrant.jwt";
  std::ofstream(warrant_file) << Issue(*world, GoodClaims());
  const auto queries_file = world->dir->path() / "queries.fvecs";
  ASSERT_TRUE(index::WriteFloatMatrix(
                  queries_file, world->gallery.dim,
                  std::span<const float>(world->gallery.queries.data(), 3 * world->gallery.dim))
                  .ok());
  int status = 0;
  const std::string output = RunCommand(
      "/usr/bin/python3 " + (SourceDir() / "tests/server/python_client.py").string() +
          " --server 127.0.0.1:" + std::to_string((*server)->port()) + " --pb2-dir " +
          PROBITY_TEST_PYTHON_STUBS + " --warrant " + warrant_file.string() + " --embedding " +
          queries_file.string() + " --collection " + kCollection + " --k 5 --nprobe 8",
      &status);
  ASSERT_EQ(status, 0) << output;
  const auto result = nlohmann::json::parse(output);
  const auto services = result["services"].get<std::vector<std::string>>();
  for (const char* name :
       {"probity.v1.Search", "probity.v1.Admin", "probity.v1.Ledger", "grpc.health.v1.Health"}) {
    EXPECT_NE(std::find(services.begin(), services.end(), name), services.end()) << name;
  }
  auto offline = index::LoadGeneration(world->generation_dir);
  ASSERT_TRUE(offline.ok());
  index::SearchParams params;
  params.k = 5;
  params.nprobe = 8;
  auto expected = (*offline)->Search(
      std::span<const float>(world->gallery.queries.data(), 3 * world->gallery.dim), params);
  ASSERT_TRUE(expected.ok());
  ASSERT_EQ(result["results"].size(), 3u);
  for (int q = 0; q < 3; ++q) {
    std::vector<int64_t> ids;
    for (const auto& hit : (*expected)[q]) ids.push_back(hit.id);
    EXPECT_EQ(result["results"][q].get<std::vector<int64_t>>(), ids) << "query " << q;
  }
  EXPECT_EQ(result["coverage"], nlohmann::json::array({2, 2}));
  EXPECT_EQ(result["health"], 1);  // grpc.health.v1 SERVING
}

}  // namespace
}  // namespace probity::service::testing
