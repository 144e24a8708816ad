#include "test_support.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "probity/client/call_status.h"
#include "probity/common/sha256.h"
#include "probity/index/generation_build.h"
#include "probity/ledger/checkpoint.h"
#include "probity/service/auth.h"
#include "probity/warrant/issue.h"

namespace probity::service::testing {

std::unique_ptr<TestWorld> MakeWorld(int num_shards) {
  auto world = std::make_unique<TestWorld>();
  world->dir = std::make_unique<TempDir>();
  world->num_shards = num_shards;
  const auto& root = world->dir->path();

  index::SyntheticOptions options;
  options.identities = 300;
  options.images_per_identity = 4;
  options.num_queries = 12;
  options.dim = 64;
  options.intrinsic_dim = 16;
  options.ground_truth_k = 10;
  options.seed = 7;
  auto gallery = index::GenerateSyntheticGallery(options);
  EXPECT_TRUE(gallery.ok()) << gallery.status();
  world->gallery = std::move(*gallery);
  std::vector<int64_t> ids(world->gallery.gallery_labels.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(1000 + i);
  world->generation_dir = root / "collections" / kCollection / "gen-1";
  index::InMemoryBuildOptions build;
  build.spec = {"IVF16,PQ8np", index::Metric::kInnerProduct, options.dim};
  build.num_shards = num_shards;
  build.vectors = world->gallery.gallery;
  build.ids = ids;
  build.train_size = static_cast<int64_t>(ids.size());  // train on the whole gallery
  build.generation = 1;
  build.output = world->generation_dir;
  auto built = index::BuildGeneration(build);
  EXPECT_TRUE(built.ok()) << built.status();

  auto issuer = warrant::Ed25519PrivateKey::Generate();
  auto other = warrant::Ed25519PrivateKey::Generate();
  EXPECT_TRUE(issuer.ok() && other.ok());
  world->issuer_key = std::make_unique<warrant::Ed25519PrivateKey>(*issuer);
  world->other_issuer_key = std::make_unique<warrant::Ed25519PrivateKey>(*other);
  auto jwk1 = warrant::PublicJwk(*issuer, kKid, kIssuer);
  auto jwk2 = warrant::PublicJwk(*other, kOtherKid, kOtherIssuer);
  auto jwks = warrant::AppendToJwks("", *jwk1);
  jwks = warrant::AppendToJwks(*jwks, *jwk2);
  EXPECT_TRUE(jwks.ok()) << jwks.status();
  std::ofstream(root / "jwks.json") << *jwks;
  std::ofstream(root / "revoked.txt") << "# revoked warrant ids\n";
  EXPECT_TRUE(ledger::GenerateSigningKey(root / "ledger-key.pem").ok());

  ServerConfig& c = world->config;
  c.data_dir = root;
  c.listen = "127.0.0.1:0";
  c.deployment = kDeployment;
  c.jwks_file = "jwks.json";
  c.revocation_file = "revoked.txt";
  c.ledger.dir = "ledger";
  c.ledger.origin = "probity-test/ledger";
  c.ledger.signing_key = "ledger-key.pem";
  c.ledger.fsync = false;  // tests check behaviour, not durability under power loss
  c.collections.push_back({kCollection, "collections/faces/gen-1", {}});
  c.plaintext = true;
  c.operators.push_back({"test-operator", common::Sha256Hex(kOperatorToken), ""});
  c.auditors.push_back({"test-auditor", common::Sha256Hex(kAuditorToken), ""});
  c.default_nprobe = 4;
  c.max_token_bytes = 2048;
  return world;
}

warrant::Claims GoodClaims() {
  warrant::Claims claims;
  claims.iss = kIssuer;
  claims.sub = "investigator-7";
  claims.aud = kDeployment;
  claims.jti = *warrant::RandomJti();
  const int64_t now = time(nullptr);
  claims.iat = now - 10;
  claims.nbf = now - 10;
  claims.exp = now + 3600;
  claims.case_number = "CASE-2026-001";
  claims.purpose = "test";
  claims.collections = {kCollection};
  claims.max_queries = 100;
  claims.max_k = 20;
  return claims;
}

std::string Issue(const TestWorld& world, const warrant::Claims& claims) {
  auto token = warrant::IssueToken(claims, *world.issuer_key, kKid);
  EXPECT_TRUE(token.ok()) << token.status();
  return *token;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !reaped_) kill(pid_, signal);
}

int ChildProcess::Wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int WaitForPortFile(const std::filesystem::path& file, int timeout_seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in(file);
    int port = 0;
    if (in >> port && port > 0) return port;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

std::filesystem::path SourceDir() {
  const char* dir = std::getenv("PROBITY_SOURCE_DIR");
  return dir ? dir : ".";
}

std::filesystem::path BinaryDir() {
  const char* dir = std::getenv("PROBITY_BINARY_DIR");
  return dir ? dir : ".";
}

std::filesystem::path ProbityBinary() { return BinaryDir() / "server" / "cli" / "probity"; }

grpc::Status SearchAsGrpcStatus(const client::SearchClient& client, const std::string& token,
                                const v1::SearchRequest& request, absl::Duration timeout,
                                v1::SearchResponse* response,
                                std::optional<uint64_t>* ledger_index) {
  absl::StatusOr<v1::SearchResponse> answer = client.Search(request, token, timeout);
  if (answer.ok()) {
    *response = *std::move(answer);
    if (ledger_index != nullptr) *ledger_index = response->receipt().entry_index();
    return grpc::Status::OK;
  }
  if (ledger_index != nullptr) {
    if (std::optional<uint64_t> entry = client::LedgerEntryOf(answer.status())) {
      *ledger_index = entry;
    }
  }
  // gRPC's codes and Abseil's are the same numbers.
  return grpc::Status(static_cast<grpc::StatusCode>(answer.status().code()),
                      std::string(answer.status().message()));
}

}  // namespace probity::service::testing
