#include "probity/warrant/verifier.h"

#include <atomic>
#include <mutex>

#include "probity/common/file_read.h"
#include "probity/common/sha256.h"
#include "probity/common/string_view.h"
#include "probity/warrant/jws.h"
#include "probity/warrant/key_set.h"
#include "refusal.h"
#include "revocation_list.h"
#include "token_cache.h"

namespace probity::warrant {
namespace {

using internal::Refuse;
namespace fs = std::filesystem;

constexpr uintmax_t kMaxTrustFileBytes = 16u << 20;

// What the file looked like when last loaded: cheap stat fields first, content hash to avoid a
// swap (and a cache flush) when a file was merely touched.
struct FileFingerprint {
  fs::file_time_type mtime{};
  uintmax_t size = 0;
  std::string sha256;
};

struct LoadedFile {
  std::string content;
  FileFingerprint fingerprint;
};

absl::StatusOr<LoadedFile> ReadTrustFile(const fs::path& path) {
  std::error_code error;
  LoadedFile file;
  file.fingerprint.mtime = fs::last_write_time(path, error);
  if (!error) file.fingerprint.size = fs::file_size(path, error);
  if (error)
    return absl::NotFoundError(common::Cat("cannot stat ", path.string(), ": ", error.message()));
  if (file.fingerprint.size > kMaxTrustFileBytes) {
    return absl::InvalidArgumentError(path.string() + " is larger than 16 MiB");
  }
  absl::StatusOr<std::string> content = common::ReadFileToString(path);
  if (!content.ok()) return content.status();
  file.content = *std::move(content);
  file.fingerprint.sha256 = common::Sha256Hex(file.content);
  return file;
}

bool StatChanged(const fs::path& path, const FileFingerprint& last) {
  std::error_code error;
  auto mtime = fs::last_write_time(path, error);
  if (error) return true;  // let the reload report why the file is gone
  auto size = fs::file_size(path, error);
  return error || mtime != last.mtime || size != last.size;
}

struct KeyState {
  std::shared_ptr<const KeySet> keys;
  // Per key set: a reload that changes the keys starts an empty cache, so a removed key stops
  // vouching for tokens at once.
  std::unique_ptr<internal::TokenCache> cache;
};

std::string UtcTime(int64_t seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(seconds),
                          absl::UTCTimeZone());
}

class VerifierImpl final : public Verifier {
 public:
  explicit VerifierImpl(Options options) : options_(std::move(options)) {}

  absl::Status Load(bool only_if_changed) {
    std::lock_guard lock(reload_mutex_);
    if (!only_if_changed || StatChanged(options_.jwks_file, jwks_fingerprint_)) {
      auto file = ReadTrustFile(options_.jwks_file);
      if (!file.ok()) return file.status();
      if (!only_if_changed || file->fingerprint.sha256 != jwks_fingerprint_.sha256) {
        auto keys = KeySet::Parse(file->content);
        if (!keys.ok()) {
          return absl::InvalidArgumentError(
              common::Cat(options_.jwks_file.string(), ": ", keys.status().message()));
        }
        auto state = std::make_shared<KeyState>();
        state->keys = std::move(*keys);
        state->cache = std::make_unique<internal::TokenCache>(options_.cache_entries);
        keys_.store(std::move(state));
      }
      jwks_fingerprint_ = std::move(file->fingerprint);
    }
    if (options_.revocation_file.empty()) return absl::OkStatus();
    if (!only_if_changed || StatChanged(options_.revocation_file, revocation_fingerprint_)) {
      auto file = ReadTrustFile(options_.revocation_file);
      if (!file.ok()) return file.status();
      if (!only_if_changed || file->fingerprint.sha256 != revocation_fingerprint_.sha256) {
        auto revoked = internal::RevocationList::Parse(file->content);
        if (!revoked.ok()) {
          return absl::InvalidArgumentError(
              common::Cat(options_.revocation_file.string(), ": ", revoked.status().message()));
        }
        revoked_.store(std::make_shared<const internal::RevocationList>(*std::move(revoked)));
      }
      revocation_fingerprint_ = std::move(file->fingerprint);
    }
    return absl::OkStatus();
  }

  std::variant<VerifiedWarrant, Refusal> Verify(std::string_view token,
                                                absl::Time now) const override {
    // Cheap refusals first, so that a flood of junk costs neither hashing nor cache churn.
    if (token.empty()) return Refuse(RefusalCode::kMissingToken, "No warrant token was sent.");
    if (token.size() > options_.policy.max_token_bytes) {
      return Refuse(
          RefusalCode::kOversizedToken,
          common::Cat("The warrant token has ", token.size(), " bytes, more than the limit of ",
                      options_.policy.max_token_bytes, "."));
    }
    std::shared_ptr<const KeyState> keys = keys_.load();
    std::shared_ptr<const internal::RevocationList> revoked = revoked_.load();
    const std::string token_sha256 = common::Sha256Hex(token);
    const bool cacheable = options_.cache_entries > 0;
    std::optional<VerifiedWarrant> warrant;
    if (cacheable) warrant = keys->cache->Find(token_sha256);
    if (!warrant) {
      auto verified = VerifyStatically(token, *keys->keys);
      if (auto* refusal = std::get_if<Refusal>(&verified)) return std::move(*refusal);
      warrant = std::move(std::get<VerifiedWarrant>(verified));
      warrant->token_sha256 = token_sha256;
      if (cacheable) keys->cache->Insert(token_sha256, *warrant);
    }
    if (auto refusal = CheckTime(warrant->claims, now)) return std::move(*refusal);
    if (revoked && revoked->Contains(IdOf(warrant->claims))) {
      return Refuse(RefusalCode::kRevoked,
                    common::Cat("Warrant \"", warrant->claims.jti, "\" of issuer \"",
                                warrant->claims.iss, "\" has been revoked."));
    }
    return std::move(*warrant);
  }

  absl::Status ReloadIfChanged() override { return Load(/*only_if_changed=*/true); }
  absl::Status Reload() override { return Load(/*only_if_changed=*/false); }

 private:
  // Everything that cannot change while the token and the key set stay the same.
  std::variant<VerifiedWarrant, Refusal> VerifyStatically(std::string_view token,
                                                          const KeySet& keys) const {
    auto parsed = ParseCompactJws(token, options_.policy.max_token_bytes);
    if (auto* refusal = std::get_if<Refusal>(&parsed)) return std::move(*refusal);
    const CompactJws& jws = std::get<CompactJws>(parsed);
    if (!jws.header.kid) {
      return Refuse(RefusalCode::kMalformedToken,
                    "The warrant token's header has no \"kid\" naming the issuer key.");
    }
    const TrustedKey* key = keys.Find(*jws.header.kid);
    if (key == nullptr) {
      return Refuse(RefusalCode::kUnknownKey,
                    common::Cat("No trusted key has kid \"", *jws.header.kid, "\"."));
    }
    if (!VerifyJwsSignature(jws, key->key)) {
      return Refuse(
          RefusalCode::kBadSignature,
          common::Cat("The warrant's signature does not verify under key \"", key->kid, "\"."));
    }
    auto claims = ParseClaims(jws.payload);
    if (auto* refusal = std::get_if<Refusal>(&claims)) return std::move(*refusal);
    VerifiedWarrant warrant{std::move(std::get<Claims>(claims)), key->kid, {}};
    Claims& c = warrant.claims;
    if (!keys.TrustsIssuer(c.iss)) {
      return Refuse(RefusalCode::kUntrustedIssuer,
                    common::Cat("Issuer \"", c.iss, "\" is not trusted here."));
    }
    if (key->issuer != c.iss) {
      return Refuse(RefusalCode::kKeyIssuerMismatch,
                    common::Cat("The warrant claims issuer \"", c.iss, "\" but key \"", key->kid,
                                "\" belongs to issuer \"", key->issuer, "\"."));
    }
    const std::string& audience = options_.policy.audience;
    if (std::find(c.audiences.begin(), c.audiences.end(), audience) == c.audiences.end()) {
      return Refuse(
          RefusalCode::kWrongAudience,
          common::Cat("The warrant is not addressed to this deployment (\"", audience, "\")."));
    }
    c.aud = audience;
    int64_t max_lifetime = absl::ToInt64Seconds(options_.policy.max_lifetime);
    int64_t lifetime = std::max(c.exp - c.nbf, c.exp - c.iat);
    if (lifetime > max_lifetime) {
      return Refuse(RefusalCode::kLifetimeOverPolicy,
                    common::Cat("The warrant is valid for ", lifetime,
                                " s, longer than the policy maximum of ", max_lifetime, " s."));
    }
    return warrant;
  }

  std::optional<Refusal> CheckTime(const Claims& c, absl::Time now) const {
    int64_t skew = absl::ToInt64Seconds(options_.policy.clock_skew);
    int64_t t = absl::ToUnixSeconds(now);
    if (t - skew >= c.exp) {
      return Refuse(RefusalCode::kExpired,
                    common::Cat("The warrant expired at ", UtcTime(c.exp), "."));
    }
    if (t + skew < c.nbf) {
      return Refuse(RefusalCode::kNotYetValid,
                    common::Cat("The warrant is not valid before ", UtcTime(c.nbf), "."));
    }
    if (t + skew < c.iat) {
      return Refuse(
          RefusalCode::kNotYetValid,
          common::Cat("The warrant claims to be issued in the future, at ", UtcTime(c.iat), "."));
    }
    return std::nullopt;
  }

  const Options options_;
  std::atomic<std::shared_ptr<const KeyState>> keys_;
  std::atomic<std::shared_ptr<const internal::RevocationList>> revoked_;
  std::mutex reload_mutex_;  // one reload at a time; readers never take it
  FileFingerprint jwks_fingerprint_;
  FileFingerprint revocation_fingerprint_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Verifier>> Verifier::Create(Options options) {
  if (options.policy.audience.empty()) {
    return absl::InvalidArgumentError("the warrant policy needs this deployment's audience");
  }
  // Bounded so that time arithmetic on int64 seconds cannot overflow.
  if (options.policy.clock_skew < absl::ZeroDuration() ||
      options.policy.clock_skew > absl::Hours(24) ||
      options.policy.max_lifetime <= absl::ZeroDuration() ||
      options.policy.max_lifetime > absl::Hours(24 * 366 * 100)) {
    return absl::InvalidArgumentError(
        "the warrant policy needs 0 <= clock skew <= 24 h and 0 < max lifetime <= 100 years");
  }
  auto verifier = std::make_unique<VerifierImpl>(std::move(options));
  if (absl::Status status = verifier->Reload(); !status.ok()) return status;
  return std::unique_ptr<Verifier>(std::move(verifier));
}

}  // namespace probity::warrant
