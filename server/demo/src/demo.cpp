#include "probity/demo/demo.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "probity/common/file_read.h"
#include "probity/common/owner_only_file.h"
#include "probity/common/sha256.h"
#include "probity/index/embedding_io.h"
#include "probity/index/generation_build.h"
#include "probity/index/private_files.h"
#include "probity/index/synthetic.h"
#include "probity/warrant/issue.h"

namespace probity::demo {
namespace {

constexpr char kIssuer[] = "probity-demo-issuer";
constexpr char kIssuerKid[] = "demo-issuer-1";

absl::StatusOr<std::string> RandomToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("RAND_bytes failed");
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

// Keys and tokens are owner-only, written durably (common/README.md, "Writing files").
absl::Status WritePrivateFile(const std::filesystem::path& file, const std::string& text) {
  if (auto status = index::CreatePrivateDirectories(file.parent_path()); !status.ok()) {
    return status;
  }
  return common::WriteOwnerOnlyFile(file, text);
}

// FAISS warns when k-means has fewer than 39 training points per centroid. 8-bit PQ has 256
// centroids per sub-quantizer, so it needs 9984 images; smaller demo galleries get 4-bit PQ (16
// centroids), and the coarse quantizer's list count grows with the gallery. The demo's first
// start then trains without warnings, in seconds.
std::string DemoIndexFactory(int64_t images) {
  constexpr int64_t kPointsPerCentroid = 39;
  const int64_t nlist = images >= kPointsPerCentroid * 64 ? 64 : 16;
  const char* pq = images >= kPointsPerCentroid * 256 ? "PQ16np" : "PQ16x4np";
  return absl::StrCat("IVF", nlist, ",", pq);
}

absl::Status MakeGallery(const std::filesystem::path& generation_dir,
                         const std::filesystem::path& query_file, int64_t identities) {
  index::SyntheticOptions options;
  options.identities = identities;
  options.images_per_identity = 5;
  options.num_queries = 20;
  options.dim = 128;
  // Enough intrinsic dimensions that strangers rarely outscore an identity's own images.
  options.intrinsic_dim = 96;
  options.ground_truth_k = 10;
  options.seed = 2024;
  spdlog::info("demo: generating a synthetic gallery of {} face-like embeddings",
               options.identities * options.images_per_identity);
  auto gallery = index::GenerateSyntheticGallery(options);
  if (!gallery.ok()) return gallery.status();
  std::vector<int64_t> ids(gallery->gallery_labels.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  index::InMemoryBuildOptions build;
  build.spec = {DemoIndexFactory(options.identities * options.images_per_identity),
                index::Metric::kInnerProduct, options.dim};
  build.num_shards = 2;
  build.vectors = gallery->gallery;
  build.ids = ids;
  build.train_size = static_cast<int64_t>(ids.size());  // train on the whole gallery
  build.generation = 1;
  build.output = generation_dir;
  if (auto built = index::BuildGeneration(build); !built.ok()) return built.status();
  if (auto status = index::WriteFloatMatrix(query_file, options.dim, gallery->queries);
      !status.ok()) {
    return status;
  }
  return index::MakeOwnerOnly(query_file);  // probe embeddings are faces too
}

absl::StatusOr<std::string> EnsureKey(const std::filesystem::path& pem_file) {
  if (std::filesystem::exists(pem_file)) return common::ReadFileToString(pem_file);
  auto key = warrant::Ed25519PrivateKey::Generate();
  if (!key.ok()) return key.status();
  auto pem = key->ToPem();
  if (!pem.ok()) return pem.status();
  if (auto status = WritePrivateFile(pem_file, *pem); !status.ok()) return status;
  return pem;
}

absl::StatusOr<std::string> EnsureToken(const std::filesystem::path& file) {
  if (std::filesystem::exists(file)) return common::ReadFileToString(file);
  auto token = RandomToken();
  if (!token.ok()) return token.status();
  if (auto status = WritePrivateFile(file, *token); !status.ok()) return status;
  return token;
}

}  // namespace

absl::StatusOr<DemoFiles> PrepareDemo(const std::filesystem::path& data_dir,
                                      const std::string& listen, int64_t identities) {
  // The demo's data dir holds a gallery, keys and tokens: owner-only when the demo creates it.
  if (auto status = index::CreatePrivateDirectories(data_dir); !status.ok()) return status;
  DemoFiles files;
  files.collection = kDemoCollection;
  files.config_file = data_dir / "config.json";
  files.warrant_file = data_dir / "demo-warrant.jwt";
  files.query_file = data_dir / "demo-queries.fvecs";
  files.operator_token_file = data_dir / "operator-token";
  files.auditor_token_file = data_dir / "auditor-token";

  const std::filesystem::path generation_dir = data_dir / "collections" / kDemoCollection / "gen-1";
  if (!std::filesystem::exists(generation_dir / "manifest.json")) {
    if (auto status = MakeGallery(generation_dir, files.query_file, identities); !status.ok())
      return status;
  }

  auto issuer_pem = EnsureKey(data_dir / "issuer" / "issuer-key.pem");
  if (!issuer_pem.ok()) return issuer_pem.status();
  auto issuer_key = warrant::Ed25519PrivateKey::FromPem(*issuer_pem);
  if (!issuer_key.ok()) return issuer_key.status();
  if (!std::filesystem::exists(data_dir / "jwks.json")) {
    auto jwk = warrant::PublicJwk(*issuer_key, kIssuerKid, kIssuer);
    if (!jwk.ok()) return jwk.status();
    auto jwks = warrant::AppendToJwks("", *jwk);
    if (!jwks.ok()) return jwks.status();
    if (auto status = WritePrivateFile(data_dir / "jwks.json", *jwks); !status.ok()) return status;
  }
  if (auto pem = EnsureKey(data_dir / "ledger-signing-key.pem"); !pem.ok()) return pem.status();
  auto operator_token = EnsureToken(files.operator_token_file);
  if (!operator_token.ok()) return operator_token.status();
  auto auditor_token = EnsureToken(files.auditor_token_file);
  if (!auditor_token.ok()) return auditor_token.status();

  if (!std::filesystem::exists(files.config_file)) {
    service::ServerConfig config;
    config.data_dir = data_dir;
    config.listen = listen;
    config.deployment = kDemoDeployment;
    config.jwks_file = "jwks.json";
    config.ledger.dir = "ledger";
    config.ledger.origin = "probity-demo/ledger";
    config.ledger.signing_key = "ledger-signing-key.pem";
    config.collections.push_back({kDemoCollection, "collections/demo/gen-1", {}});
    config.plaintext = true;  // allowed off loopback only by the --demo flag itself
    config.operators.push_back({"demo-operator", common::Sha256Hex(*operator_token), ""});
    config.auditors.push_back({"demo-auditor", common::Sha256Hex(*auditor_token), ""});
    config.default_nprobe = 8;
    if (auto status = WritePrivateFile(files.config_file, service::ConfigToJson(config));
        !status.ok()) {
      return status;
    }
  }

  warrant::Claims claims;
  claims.iss = kIssuer;
  claims.sub = "demo-investigator";
  claims.aud = kDemoDeployment;
  auto jti = warrant::RandomJti();
  if (!jti.ok()) return jti.status();
  claims.jti = *jti;
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  claims.iat = now;
  claims.nbf = now;
  claims.exp = now + 24 * 3600;
  claims.case_number = "DEMO-0001";
  claims.purpose = "demonstration of warranted search";
  claims.collections = {kDemoCollection};
  claims.max_queries = 1000;
  claims.max_k = 50;
  auto token = warrant::IssueToken(claims, *issuer_key, kIssuerKid);
  if (!token.ok()) return token.status();
  if (auto status = WritePrivateFile(files.warrant_file, *token + "\n"); !status.ok()) {
    return status;
  }
  return files;
}

}  // namespace probity::demo
