#pragma once

// Shared fixture pieces for the service tests: a small generated gallery written as an index
// generation, per-test issuer and ledger keys, a config, warrants, and child processes that are
// always killed.

#include <grpcpp/support/status.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/scoped_temp_dir.h"
#include "probity/client/search_client.h"
#include "probity/index/synthetic.h"
#include "probity/service/config.h"
#include "probity/warrant/ed25519.h"
#include "probity/warrant/warrant.h"

namespace probity::service::testing {

inline constexpr char kIssuer[] = "test-issuer";
inline constexpr char kKid[] = "test-key-1";
inline constexpr char kOtherIssuer[] = "other-issuer";
inline constexpr char kOtherKid[] = "other-key-1";
inline constexpr char kDeployment[] = "probity-test";
inline constexpr char kCollection[] = "faces";
inline constexpr char kOperatorToken[] = "operator-secret-token";
inline constexpr char kAuditorToken[] = "auditor-secret-token";

using TempDir = test_support::ScopedTempDir;

struct TestWorld {
  std::unique_ptr<TempDir> dir;
  index::SyntheticGallery gallery;
  std::filesystem::path generation_dir;
  std::unique_ptr<warrant::Ed25519PrivateKey> issuer_key;
  std::unique_ptr<warrant::Ed25519PrivateKey> other_issuer_key;
  ServerConfig config;  // embedded mode, plaintext on 127.0.0.1:0
  int num_shards = 3;
};

// dim 64, 300 identities x 4 images, IVF16,PQ8np (no polysemous training) in 3 shards: small enough
// to build in seconds.
std::unique_ptr<TestWorld> MakeWorld(int num_shards = 3);

// A suite that shares one TestWorld of `kShards` shards (made once: the gallery takes seconds)
// while each test gets its own copy of the config with a ledger and state dir of its own, so
// that entries and budgets never mix between tests.
template <typename Suite, int kShards>
class SharedWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = MakeWorld(kShards).release(); }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }

  // Sets config_ to the world's config with "<prefix>ledger-N" and "<prefix>state-N"; returns N.
  int UseOwnLedgerAndState(const std::string& prefix) {
    static int counter = 0;
    config_ = world_->config;
    config_.ledger.dir = prefix + "ledger-" + std::to_string(++counter);
    config_.state_dir = prefix + "state-" + std::to_string(counter);
    return counter;
  }

  static inline TestWorld* world_ = nullptr;
  ServerConfig config_;
};

// Claims valid now for kIssuer, covering kCollection.
warrant::Claims GoodClaims();
std::string Issue(const TestWorld& world, const warrant::Claims& claims);

// Spawns argv (argv[0] a path) with stdout/stderr to `log`; killed (SIGKILL) on destruction.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~ChildProcess();
  pid_t pid() const { return pid_; }
  void Signal(int signal);
  int Wait();  // exit status (or 128 + signal)

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// A search through the client library, as grpc::Status for the service tests' checks, and the
// ledger entry that recorded it: the receipt's on an answer, the one a failed or refused call
// names (the `probity-ledger-index` trailer); left as it is when the server recorded none.
grpc::Status SearchAsGrpcStatus(const client::SearchClient& client, const std::string& token,
                                const v1::SearchRequest& request, absl::Duration timeout,
                                v1::SearchResponse* response,
                                std::optional<uint64_t>* ledger_index);

// Polls for a port file written by `--port-file`; 0 when it does not appear in time.
int WaitForPortFile(const std::filesystem::path& file, int timeout_seconds = 60);

std::filesystem::path ProbityBinary();
std::filesystem::path SourceDir();
std::filesystem::path BinaryDir();

}  // namespace probity::service::testing
