// The metrics endpoint of real servers on loopback: searches and refusals made with gRPC
// clients move the scraped series by exactly what was done, the ledger series match the
// ledger's files, shard coverage and shard servers show as the router sees them, and nothing a
// request or a warrant carries ever appears in the scrape.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "failing_ledger.h"
#include "probity/client/search_client.h"
#include "probity/common/sha256.h"
#include "probity/ledger/ledger.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/ledger_service.grpc.pb.h"
#include "probity/v1/shard.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

// Sends `request` as it is to 127.0.0.1:<port> over a plain socket and reads the answer.
struct HttpResponse {
  std::string status_line;
  std::string body;
};

HttpResponse HttpExchange(int port, const std::string& request) {
  HttpResponse response;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A server that never answers fails the test instead of hanging it.
  const timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string raw;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    // MSG_NOSIGNAL: a server that closes early must not kill the test with SIGPIPE.
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      ssize_t n;
      while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, n);
    }
  }
  ::close(fd);
  const size_t line_end = raw.find("\r\n");
  response.status_line = raw.substr(0, line_end);
  const size_t body = raw.find("\r\n\r\n");
  if (body != std::string::npos) response.body = raw.substr(body + 4);
  return response;
}

HttpResponse HttpGet(int port, const std::string& path, const std::string& method = "GET") {
  return HttpExchange(
      port,
      absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
}

std::string Scrape(int port) {
  const HttpResponse response = HttpGet(port, "/metrics");
  EXPECT_TRUE(absl::StrContains(response.status_line, " 200 ")) << response.status_line;
  return response.body;
}

// The value of one series ("name{labels}" exactly as printed), nullopt when absent.
std::optional<double> Sample(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

double Value(const std::string& text, const std::string& series) {
  const std::optional<double> value = Sample(text, series);
  EXPECT_TRUE(value.has_value()) << "no series " << series;
  return value.value_or(-1);
}

// Label names allowed anywhere in a scrape, each with a bounded or operator-chosen value set
// (`le`: histogram buckets).
void ExpectOnlyKnownLabels(const std::string& text) {
  const std::set<std::string> allowed = {"outcome", "code",   "backend", "result", "collection",
                                         "shard",   "server", "device",  "le"};
  const std::regex label(R"re(([A-Za-z_][A-Za-z0-9_]*)=")re");
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(line.starts_with("probity_")) << line;
    const size_t open = line.find('{');
    if (open == std::string::npos) continue;
    const std::string labels = line.substr(open, line.find('}') - open);
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
      EXPECT_TRUE(allowed.count((*it)[1].str())) << "label " << (*it)[1] << " in " << line;
    }
  }
}

uint64_t SegmentFileBytes(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    if (file.path().filename().string().starts_with("segment-")) bytes += file.file_size();
  }
  return bytes;
}

class MetricsServiceTest : public SharedWorldTest<MetricsServiceTest, 3> {
 protected:
  void SetUp() override {
    UseOwnLedgerAndState("metrics-");
    config_.metrics = MetricsConfig{"127.0.0.1:0", false};
  }

  std::unique_ptr<Server> Start(const ServerConfig& config, Server::Overrides overrides = {}) {
    auto server = Server::StartRouter(config, std::move(overrides));
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    EXPECT_GT((*server)->metrics_port(), 0);
    return *std::move(server);
  }

  v1::SearchRequest Request(uint32_t k = 5, const std::string& collection = kCollection) const {
    v1::SearchRequest request;
    request.set_collection(collection);
    request.set_k(k);
    request.set_nprobe(8);
    request.set_justification(kJustification);
    const int dim = world_->gallery.dim;
    const float* begin = world_->gallery.queries.data();
    request.add_queries()->mutable_values()->Add(begin, begin + dim);
    return request;
  }

  static absl::Status Search(int port, const std::string& token, const v1::SearchRequest& request) {
    auto client = client::SearchClient::Connect("127.0.0.1:" + std::to_string(port), {});
    if (!client.ok()) return client.status();
    return client->Search(request, token).status();
  }

  static constexpr char kJustification[] = "lead 5521 from the harbour camera, per DI Okafor";
  static constexpr char kSecretCollection[] = "suspects-of-operation-nightjar";
};

TEST_F(MetricsServiceTest, SearchesRefusalsLedgerAndShardsMoveByExactlyWhatWasDone) {
  auto server = Start(config_);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string before = Scrape(server->metrics_port());
  // Created at start, so they read 0 before the first search rather than being absent.
  EXPECT_EQ(Value(before, R"(probity_searches_total{outcome="answered"})"), 0);
  EXPECT_EQ(Value(before, R"(probity_refusals_total{code="missing_token"})"), 0);
  EXPECT_EQ(Value(before, "probity_ledger_entries"), 0);

  const warrant::Claims claims = GoodClaims();
  const std::string token = Issue(*world_, claims);
  ASSERT_TRUE(Search(port, token, Request()).ok());
  ASSERT_TRUE(Search(port, token, Request(3)).ok());
  EXPECT_EQ(Search(port, "", Request()).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Search(port, token, Request(5, kSecretCollection)).code(),
            absl::StatusCode::kPermissionDenied);  // collection_out_of_scope
  EXPECT_EQ(Search(port, token, Request(0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Search(port, token, Request(claims.max_k + 1)).code(),
            absl::StatusCode::kPermissionDenied);  // k_over_max

  const std::string after = Scrape(server->metrics_port());
  auto delta = [&](const std::string& series) {
    return Value(after, series) - Value(before, series);
  };
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="answered"})"), 2);
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="answered_partial"})"), 0);
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="failed"})"), 0);
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="not_recorded"})"), 0);
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="refused"})"), 4);
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="busy"})"), 0);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="missing_token"})"), 1);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="collection_out_of_scope"})"), 1);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="invalid_request"})"), 1);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="k_over_max"})"), 1);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="expired"})"), 0);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="other"})"), 0);
  // Only the two searches that ran are timed; every shard answered.
  EXPECT_EQ(delta("probity_search_duration_seconds_count"), 2);
  EXPECT_EQ(delta(R"(probity_search_duration_seconds_bucket{le="+Inf"})"), 2);
  EXPECT_GT(delta("probity_search_duration_seconds_sum"), 0);
  EXPECT_EQ(delta("probity_search_shards_missing_total"), 0);
  EXPECT_EQ(Value(after, "probity_searches_in_flight"), 0);
  EXPECT_EQ(delta(R"(probity_shard_searches_total{backend="local",result="ok"})"),
            2 * world_->num_shards);
  EXPECT_EQ(delta(R"(probity_shard_searches_total{backend="local",result="error"})"), 0);
  // The two searches' time in their phases and in the FAISS calls, as Admin.Stats counts it.
  const ServiceCounters& counters = server->counters();
  EXPECT_GT(delta("probity_shard_search_seconds_total"), 0);
  EXPECT_NEAR(Value(after, "probity_shard_search_seconds_total"),
              static_cast<double>(counters.shards.search_micros.load()) / 1e6, 1e-6);
  EXPECT_GT(delta("probity_search_shard_phase_seconds_total"), 0);
  EXPECT_NEAR(Value(after, "probity_search_shard_phase_seconds_total"),
              static_cast<double>(counters.shard_phase_micros.load()) / 1e6, 1e-6);
  EXPECT_GT(delta("probity_search_ledger_append_seconds_total"), 0);
  EXPECT_NEAR(Value(after, "probity_search_ledger_append_seconds_total"),
              static_cast<double>(counters.ledger_append_micros.load()) / 1e6, 1e-6);
  // And as distributions: one observation per search in each phase, summing to the counters.
  for (const char* phase : {"probity_search_shard_phase_duration_seconds",
                            "probity_search_ledger_append_duration_seconds"}) {
    const std::string name(phase);
    EXPECT_EQ(delta(name + "_count"), 2) << name;
    EXPECT_EQ(delta(name + R"(_bucket{le="+Inf"})"), 2) << name;
    EXPECT_LE(delta(name + R"(_bucket{le="0.0001"})"), delta(name + R"(_bucket{le="10"})")) << name;
  }
  EXPECT_NEAR(Value(after, "probity_search_shard_phase_duration_seconds_sum"),
              Value(after, "probity_search_shard_phase_seconds_total"), 1e-6);
  EXPECT_NEAR(Value(after, "probity_search_ledger_append_duration_seconds_sum"),
              Value(after, "probity_search_ledger_append_seconds_total"), 1e-6);
  // Timed within each search's own duration.
  EXPECT_LE(delta("probity_search_shard_phase_seconds_total") +
                delta("probity_search_ledger_append_seconds_total"),
            delta("probity_search_duration_seconds_sum"));

  // Six entries (two searches, four refusals, each its own group commit here), matching the
  // ledger and its files.
  EXPECT_EQ(delta("probity_ledger_appends_total"), 6);
  EXPECT_EQ(Value(after, "probity_ledger_entries"), 6);
  EXPECT_EQ(delta("probity_ledger_append_failures_total"), 0);
  EXPECT_EQ(delta("probity_ledger_group_commit_entries_sum"), 6);
  EXPECT_EQ(delta("probity_ledger_fsync_duration_seconds_count"),
            delta("probity_ledger_group_commit_entries_count"));
  EXPECT_EQ(Value(after, "probity_ledger_bytes"),
            static_cast<double>(SegmentFileBytes(Resolve(config_, config_.ledger.dir))));
  EXPECT_EQ(Value(after, "probity_refusals_not_recorded_total"), 0);

  // Coverage as the embedded server knows it: one replica (itself) per shard, and the vectors
  // of each shard it holds.
  double vectors = 0;
  for (int shard = 0; shard < world_->num_shards; ++shard) {
    const std::string labels = absl::StrCat("{collection=\"faces\",shard=\"", shard, "\"}");
    EXPECT_EQ(Value(after, "probity_shard_replicas" + labels), 1);
    vectors += Value(after, "probity_shard_vectors" + labels);
  }
  EXPECT_EQ(vectors, static_cast<double>(world_->gallery.gallery_labels.size()));
  // No GPU in this process (no "gpu" in its config; a CPU-only build can have none): no GPU
  // series, and no shard-server series in embedded mode.
  EXPECT_FALSE(absl::StrContains(after, "probity_gpu_"));
  EXPECT_FALSE(absl::StrContains(after, "probity_shard_server_reachable"));

  // Nothing from the requests or the warrant: its id, case, investigator, issuer, the token,
  // the justification, the collection a caller asked for, the caller's address.
  for (const std::string& personal :
       {claims.jti, claims.case_number, claims.sub, std::string(kIssuer), token.substr(0, 24),
        std::string(kJustification), std::string(kSecretCollection), std::string("ipv4:")}) {
    EXPECT_FALSE(absl::StrContains(after, personal)) << personal;
  }
  ExpectOnlyKnownLabels(after);
}

// Admin and Ledger calls refused at the call gate (no credential, or one of another role) are
// counted by code like search refusals, without being searches, and so are a shard server's.
TEST_F(MetricsServiceTest, CallsRefusedAtTheGateCountByCode) {
  auto server = Start(config_);
  ASSERT_NE(server, nullptr);
  const std::string address = "127.0.0.1:" + std::to_string(server->port());
  const std::string before = Scrape(server->metrics_port());
  EXPECT_EQ(Value(before, R"(probity_refusals_total{code="caller_unauthenticated"})"), 0);
  EXPECT_EQ(Value(before, R"(probity_refusals_total{code="caller_not_permitted"})"), 0);

  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto admin_stats = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::StatsResponse stats;
    return v1::Admin::NewStub(channel)->Stats(&context, v1::StatsRequest(), &stats).error_code();
  };
  auto ledger_checkpoint = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::GetCheckpointResponse checkpoint;
    return v1::Ledger::NewStub(channel)
        ->GetCheckpoint(&context, v1::GetCheckpointRequest(), &checkpoint)
        .error_code();
  };
  EXPECT_EQ(admin_stats(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ledger_checkpoint(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ledger_checkpoint(kOperatorToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(admin_stats(kAuditorToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(admin_stats("a-guessed-token"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(admin_stats(kOperatorToken), grpc::StatusCode::OK);
  EXPECT_EQ(ledger_checkpoint(kAuditorToken), grpc::StatusCode::OK);

  const std::string after = Scrape(server->metrics_port());
  auto delta = [&](const std::string& series) {
    return Value(after, series) - Value(before, series);
  };
  EXPECT_EQ(delta(R"(probity_refusals_total{code="caller_unauthenticated"})"), 2);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="caller_not_permitted"})"), 3);
  EXPECT_EQ(delta(R"(probity_refusals_total{code="other"})"), 0);
  EXPECT_EQ(delta(R"(probity_searches_total{outcome="refused"})"), 0);
  EXPECT_EQ(delta("probity_ledger_appends_total"), 5);  // each refusal is also in the ledger
  for (const std::string& personal :
       {std::string("a-guessed-token"), std::string(kOperatorToken), std::string("ipv4:"),
        std::string("test-operator"), std::string("Admin/Stats")}) {
    EXPECT_FALSE(absl::StrContains(after, personal)) << personal;
  }
  ExpectOnlyKnownLabels(after);

  // A shard server (no ledger) counts the calls its gate refuses too.
  ServerConfig shard_config = config_;
  shard_config.routers = {{"test-router", common::Sha256Hex("router-secret-token"), ""}};
  auto shard = Server::StartShard(shard_config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  {
    grpc::ClientContext context;
    v1::ShardInfoResponse info;
    EXPECT_EQ(
        v1::Shard::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string((*shard)->port()),
                                               grpc::InsecureChannelCredentials()))
            ->Info(&context, v1::ShardInfoRequest(), &info)
            .error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Value(Scrape((*shard)->metrics_port()),
                  R"(probity_refusals_total{code="caller_unauthenticated"})"),
            1);
}

// Debian's civetweb crashed the process on its own error pages (metrics.cpp says why); every
// request that is not a scrape must be answered without one, and the server must go on.
TEST_F(MetricsServiceTest, AnyOtherRequestIsRefusedAndTheServerGoesOn) {
  auto server = Start(config_);
  ASSERT_NE(server, nullptr);
  const int port = server->metrics_port();
  EXPECT_TRUE(absl::StrContains(HttpGet(port, "/").status_line, " 404 "));
  EXPECT_TRUE(absl::StrContains(HttpGet(port, "/ledger").status_line, " 404 "));
  EXPECT_TRUE(absl::StrContains(HttpGet(port, "/metrics", "POST").status_line, " 405 "));
  EXPECT_TRUE(absl::StrContains(HttpGet(port, "/metrics", "DELETE").status_line, " 405 "));
  const HttpResponse head = HttpGet(port, "/metrics", "HEAD");
  EXPECT_TRUE(absl::StrContains(head.status_line, " 200 ")) << head.status_line;
  EXPECT_TRUE(head.body.empty());
  // Requests civetweb cannot parse or will not take: any answer but a crash.
  HttpExchange(port, "NONSENSE\r\n\r\n");
  HttpExchange(port, "GET /metrics HTTP/9.9\r\n\r\n");
  HttpExchange(port, absl::StrCat("GET /metrics HTTP/1.0\r\nX-Long: ", std::string(100000, 'a'),
                                  "\r\n\r\n"));
  HttpExchange(port, absl::StrCat("GET /", std::string(20000, 'b'), " HTTP/1.0\r\n\r\n"));
  HttpExchange(port, "GET /%00%ff/../../etc/passwd HTTP/1.0\r\n\r\n");
  const HttpResponse scrape = HttpGet(port, "/metrics");
  EXPECT_TRUE(absl::StrContains(scrape.status_line, " 200 ")) << scrape.status_line;
  EXPECT_TRUE(absl::StrContains(scrape.body, "probity_searches_total"));
}

TEST_F(MetricsServiceTest, ASearchTheLedgerCannotRecordCountsAsNotRecorded) {
  ledger::Options options;
  options.dir = Resolve(config_, config_.ledger.dir);
  options.origin = config_.ledger.origin;
  options.signing_key = Resolve(config_, config_.ledger.signing_key);
  options.fsync = false;
  auto inner = ledger::Ledger::Open(options);
  ASSERT_TRUE(inner.ok()) << inner.status();
  auto failing = std::make_unique<FailingLedger>(std::move(*inner));
  FailingLedger* ledger = failing.get();
  auto server = Start(config_, Server::Overrides{std::move(failing)});
  ASSERT_NE(server, nullptr);
  ledger->fail = true;
  EXPECT_EQ(Search(server->port(), Issue(*world_, GoodClaims()), Request()).code(),
            absl::StatusCode::kUnavailable);
  const std::string text = Scrape(server->metrics_port());
  EXPECT_EQ(Value(text, R"(probity_searches_total{outcome="not_recorded"})"), 1);
  EXPECT_EQ(Value(text, R"(probity_searches_total{outcome="answered"})"), 0);
  EXPECT_EQ(Value(text, "probity_search_duration_seconds_count"), 1);
}

TEST_F(MetricsServiceTest, RouterShowsShardServersCoverageAndPartialSearches) {
  // A shard server holding shards 0 and 1 of 3, with its own metrics; shard 2 has no server.
  ServerConfig shard_config = config_;
  shard_config.collections[0].shards = {0, 1};
  auto shard = Server::StartShard(shard_config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  ASSERT_GT((*shard)->metrics_port(), 0);
  const std::string shard_address = "127.0.0.1:" + std::to_string((*shard)->port());

  UseOwnLedgerAndState("metrics-router-");
  ServerConfig router_config = config_;
  router_config.collections.clear();
  router_config.metrics = MetricsConfig{"127.0.0.1:0", false};
  const std::string unreachable = "127.0.0.1:1";  // nothing listens on port 1
  router_config.shard_servers = {shard_address, unreachable};
  router_config.shard_deadline_ms = 500;
  auto router = Start(router_config);
  ASSERT_NE(router, nullptr);

  const std::string token = Issue(*world_, GoodClaims());
  v1::SearchRequest partial = Request();
  partial.set_allow_partial(true);
  ASSERT_TRUE(Search(router->port(), token, partial).ok());
  EXPECT_EQ(Search(router->port(), token, Request()).code(), absl::StatusCode::kUnavailable);

  const std::string text = Scrape(router->metrics_port());
  EXPECT_EQ(Value(text, R"(probity_searches_total{outcome="answered_partial"})"), 1);
  EXPECT_EQ(Value(text, R"(probity_searches_total{outcome="failed"})"), 1);
  EXPECT_EQ(Value(text, "probity_search_shards_missing_total"), 2);
  EXPECT_EQ(Value(text, "probity_search_duration_seconds_count"), 2);
  EXPECT_EQ(Value(text, R"(probity_shard_replicas{collection="faces",shard="0"})"), 1);
  EXPECT_EQ(Value(text, R"(probity_shard_replicas{collection="faces",shard="1"})"), 1);
  EXPECT_EQ(Value(text, R"(probity_shard_replicas{collection="faces",shard="2"})"), 0);
  EXPECT_EQ(Value(text, "probity_shard_server_reachable{server=\"" + shard_address + "\"}"), 1);
  EXPECT_EQ(Value(text, "probity_shard_server_reachable{server=\"" + unreachable + "\"}"), 0);
  EXPECT_EQ(
      Value(text, "probity_shard_searches_total{backend=\"" + shard_address + "\",result=\"ok\"}"),
      4);
  EXPECT_FALSE(absl::StrContains(text, "probity_shard_vectors"));  // a router holds no shards
  ExpectOnlyKnownLabels(text);

  // The shard server counts the same four shard searches as its own, and what it holds.
  const std::string shard_text = Scrape((*shard)->metrics_port());
  EXPECT_EQ(Value(shard_text, R"(probity_shard_searches_total{backend="local",result="ok"})"), 4);
  EXPECT_GT(Value(shard_text, R"(probity_shard_vectors{collection="faces",shard="1"})"), 0);
  EXPECT_FALSE(Sample(shard_text, R"(probity_shard_vectors{collection="faces",shard="2"})"));
  EXPECT_FALSE(absl::StrContains(shard_text, "probity_ledger_"));  // no ledger on a shard server
  EXPECT_FALSE(absl::StrContains(shard_text, "probity_gpu_"));
  ExpectOnlyKnownLabels(shard_text);
}

TEST_F(MetricsServiceTest, OffWithoutTheKeyAndABusyAddressRefusesToStart) {
  ServerConfig off = config_;
  off.metrics.reset();
  auto without = Server::StartRouter(off);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ((*without)->metrics_port(), 0);
  without->reset();

  auto first = Start(config_);
  ASSERT_NE(first, nullptr);
  UseOwnLedgerAndState("metrics-second-");
  config_.metrics = MetricsConfig{"127.0.0.1:" + std::to_string(first->metrics_port()), false};
  auto second = Server::StartRouter(config_);
  ASSERT_FALSE(second.ok()) << "two servers on one metrics port";
  EXPECT_TRUE(absl::StrContains(second.status().message(), "metrics: cannot listen on 127.0.0.1:"))
      << second.status();
}

}  // namespace
}  // namespace probity::service::testing
