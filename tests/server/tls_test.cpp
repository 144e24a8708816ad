// Transport security by configuration: mutual TLS with per-test certificates (made with the
// openssl command), client-certificate identities for operators, and the warrant's subject
// bound to the investigator's certificate.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "probity/client/channel_credentials.h"
#include "probity/client/search_client.h"
#include "probity/common/file_read.h"
#include "probity/index/embedding_io.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/ledger_service.grpc.pb.h"
#include "probity/v1/shard.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

bool OpensslAvailable() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// A CA, a server certificate for localhost/127.0.0.1, and client certificates by common name.
class Pki {
 public:
  explicit Pki(std::filesystem::path dir) : dir_(std::move(dir)) {
    ok_ = Shell(
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-keyout ca.key -out ca.pem -days 1 -subj /CN=probity-test-ca") &&
          Issue("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
  }
  bool ok() const { return ok_; }
  bool Issue(const std::string& name, const std::string& common_name,
             const std::string& extension = "") {
    std::ofstream(dir_ / (name + ".ext")) << extension << "\n";
    return Shell("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
                 name + ".key -out " + name + ".csr -subj /CN=" + common_name) &&
           Shell("openssl x509 -req -in " + name +
                 ".csr -CA ca.pem -CAkey ca.key "
                 "-CAcreateserial -days 1 -out " +
                 name + ".pem" + (extension.empty() ? "" : " -extfile " + name + ".ext"));
  }
  std::filesystem::path File(const std::string& name) const { return dir_ / name; }

  // TLS trusting this CA, presenting `client`'s certificate (none when empty): what the client
  // library's channel (client::OpenChannel) is given.
  client::TlsFiles ClientTls(const std::string& client) const {
    client::TlsFiles tls{File("ca.pem").string(), "", ""};
    if (!client.empty()) {
      tls.cert_file = File(client + ".pem").string();
      tls.key_file = File(client + ".key").string();
    }
    return tls;
  }

 private:
  bool Shell(const std::string& command) const {
    return std::system(("cd " + dir_.string() + " && " + command + " >/dev/null 2>&1").c_str()) ==
           0;
  }
  std::filesystem::path dir_;
  bool ok_ = false;
};

TEST(TlsTest, MutualTlsIdentitiesBindWarrantsAndOperators) {
  auto world = MakeWorld(2);
  if (!OpensslAvailable())
    GTEST_SKIP() << "the openssl command (Debian package openssl) is missing";
  Pki pki(world->dir->path());
  ASSERT_TRUE(pki.ok());
  ASSERT_TRUE(pki.Issue("investigator", "investigator-7"));
  ASSERT_TRUE(pki.Issue("mallory", "mallory"));
  ASSERT_TRUE(pki.Issue("operator", "operator-1"));

  ServerConfig config = world->config;
  config.plaintext = false;
  config.tls = TlsConfig{pki.File("server.pem"), pki.File("server.key"), pki.File("ca.pem"),
                         /*require_client_cert=*/true};
  config.operators = {{"cert-operator", "", "operator-1"}};
  auto server = Server::StartRouter(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "localhost:" + std::to_string((*server)->port());

  v1::SearchRequest request;
  request.set_collection(kCollection);
  request.set_k(5);
  request.add_queries()->mutable_values()->Add(world->gallery.queries.begin(),
                                               world->gallery.queries.begin() + world->gallery.dim);
  const std::string token = Issue(*world, GoodClaims());  // sub = investigator-7
  // TLS trusting the test CA, presenting `holder`'s certificate (none when empty).
  auto search_as = [&](const std::string& holder) -> absl::StatusOr<v1::SearchResponse> {
    auto search = client::SearchClient::Connect(address, pki.ClientTls(holder));
    if (!search.ok()) return search.status();
    return search->Search(request, token, absl::Seconds(10));
  };

  const absl::StatusOr<v1::SearchResponse> response = search_as("investigator");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->results(0).candidates_size(), 5);

  // The investigator's CLI over mutual TLS.
  {
    std::ofstream(world->dir->path() / "warrant.jwt") << token << "\n";
    const auto queries = world->dir->path() / "probe.fvecs";
    ASSERT_TRUE(index::WriteFloatMatrix(
                    queries, world->gallery.dim,
                    std::span<const float>(world->gallery.queries.data(), world->gallery.dim))
                    .ok());
    const std::string command =
        ProbityBinary().string() + " query --server " + address + " --collection " + kCollection +
        " --k 5 --warrant " + (world->dir->path() / "warrant.jwt").string() + " --embedding " +
        queries.string() + " --ca " + pki.File("ca.pem").string() + " --cert " +
        pki.File("investigator.pem").string() + " --key " + pki.File("investigator.key").string() +
        " > " + (world->dir->path() / "query.out").string() + " 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0)
        << common::ReadFileToString(world->dir->path() / "query.out").value_or("");
    const std::string printed =
        common::ReadFileToString(world->dir->path() / "query.out").value_or("");
    EXPECT_NE(printed.find("coverage: 2/2 shards"), std::string::npos) << printed;
    EXPECT_NE(printed.find("signed checkpoint:"), std::string::npos) << printed;
  }

  // Plaintext and certificate-less clients never reach the service.
  {
    auto plaintext = client::SearchClient::Connect(address, client::TlsFiles{});
    ASSERT_TRUE(plaintext.ok()) << plaintext.status();
    EXPECT_EQ(plaintext->Search(request, token, absl::Seconds(5)).status().code(),
              absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(search_as("").status().code(), absl::StatusCode::kUnavailable);

  // The warrant names investigator-7; another certificate holder cannot use it.
  const uint64_t searches = (*server)->counters().shards.searches_run.load();
  // Refused: the StatusOr holds no response, so no candidates reached mallory.
  const absl::StatusOr<v1::SearchResponse> refused = search_as("mallory");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StartsWith(refused.status().message(), "identity_mismatch:"))
      << refused.status();
  EXPECT_EQ((*server)->counters().shards.searches_run.load(), searches);

  // The operator certificate opens Admin; the investigator's does not, nor does it open Ledger.
  auto stats_as = [&](const std::string& client) {
    auto channel = client::OpenChannel(address, pki.ClientTls(client));
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return grpc::StatusCode::INTERNAL;
    auto stub = v1::Admin::NewStub(*channel);
    grpc::ClientContext context;
    v1::StatsResponse stats;
    return stub->Stats(&context, v1::StatsRequest(), &stats).error_code();
  };
  EXPECT_EQ(stats_as("operator"), grpc::StatusCode::OK);
  EXPECT_EQ(stats_as("investigator"), grpc::StatusCode::PERMISSION_DENIED);
  {
    auto channel = client::OpenChannel(address, pki.ClientTls("operator"));
    ASSERT_TRUE(channel.ok()) << channel.status();
    auto stub = v1::Ledger::NewStub(*channel);
    grpc::ClientContext context;
    v1::GetCheckpointResponse checkpoint;
    EXPECT_EQ(stub->GetCheckpoint(&context, v1::GetCheckpointRequest(), &checkpoint).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST(TlsTest, ShardServersAnswerOnlyTheirRoutersOverMutualTls) {
  auto world = MakeWorld(2);
  if (!OpensslAvailable())
    GTEST_SKIP() << "the openssl command (Debian package openssl) is missing";
  Pki pki(world->dir->path());
  ASSERT_TRUE(pki.ok());
  ASSERT_TRUE(pki.Issue("router", "probity-router"));
  ASSERT_TRUE(pki.Issue("mallory", "mallory"));
  const TlsConfig server_tls{pki.File("server.pem"), pki.File("server.key"), pki.File("ca.pem"),
                             /*require_client_cert=*/true};

  ServerConfig shard_config = world->config;
  shard_config.tls = server_tls;
  shard_config.plaintext = false;
  EXPECT_FALSE(Server::StartShard(shard_config).ok());  // no "routers": refused
  shard_config.routers = {{"router", "", "probity-router"}};
  auto shard = Server::StartShard(shard_config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  const std::string shard_address = "localhost:" + std::to_string((*shard)->port());

  ServerConfig router_config = world->config;
  router_config.collections.clear();
  router_config.shard_servers = {shard_address};
  router_config.shard_client_tls =
      TlsConfig{pki.File("router.pem"), pki.File("router.key"), pki.File("ca.pem"), false};
  auto router = Server::StartRouter(router_config);
  ASSERT_TRUE(router.ok()) << router.status();
  auto search = client::SearchClient::Connect("127.0.0.1:" + std::to_string((*router)->port()),
                                              client::TlsFiles{});
  ASSERT_TRUE(search.ok()) << search.status();
  v1::SearchRequest request;
  request.set_collection(kCollection);
  request.set_k(5);
  request.add_queries()->mutable_values()->Add(world->gallery.queries.begin(),
                                               world->gallery.queries.begin() + world->gallery.dim);
  {
    const absl::StatusOr<v1::SearchResponse> response =
        search->Search(request, Issue(*world, GoodClaims()));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->coverage().shards_answered(), 2u);
    EXPECT_EQ(response->results(0).candidates_size(), 5);
  }

  // Another certificate from the same CA cannot go around the router's warrant check. A raw
  // Shard stub: the client library has no client for the router-to-shard RPC, by design.
  const uint64_t searches = (*shard)->counters().shards.searches_run.load();
  auto channel = client::OpenChannel(shard_address, pki.ClientTls("mallory"));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto direct = v1::Shard::NewStub(*channel);
  grpc::ClientContext context;
  v1::ShardSearchRequest bypass;
  bypass.set_collection(kCollection);
  bypass.set_shard(0);
  bypass.set_dim(world->gallery.dim);
  bypass.set_k(5);
  bypass.mutable_queries()->Add(world->gallery.queries.begin(),
                                world->gallery.queries.begin() + world->gallery.dim);
  v1::ShardSearchResponse answer;
  EXPECT_EQ(direct->SearchShard(&context, bypass, &answer).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(answer.results_size(), 0);
  EXPECT_EQ((*shard)->counters().shards.searches_run.load(), searches);
}

TEST(TlsTest, PlaintextIsRefusedOffLoopbackOutsideDemo) {
  ServerConfig config;
  config.listen = "0.0.0.0:7443";
  EXPECT_FALSE(ValidateConfig(config).ok());  // neither TLS nor plaintext configured
  config.plaintext = true;
  EXPECT_FALSE(ValidateConfig(config).ok());  // plaintext on a network address
  config.listen = "127.0.0.1:7443";
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.listen = "0.0.0.0:7443";
  config.demo = true;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.demo = false;
  config.tls = TlsConfig{"server.pem", "server.key", "", false};
  EXPECT_TRUE(ValidateConfig(config).ok());
  // One credential may not be both operator and auditor.
  config.operators = {{"alice", "abcd", ""}};
  config.auditors = {{"alice-too", "abcd", ""}};
  EXPECT_FALSE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace probity::service::testing
