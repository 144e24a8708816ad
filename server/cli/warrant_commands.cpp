// probity warrant keygen|issue|inspect: the issuing authority's tools for test and small
// deployments, and an explainer that tells anyone why a token would be accepted or refused.

#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/time/clock.h"
#include "command_registry.h"
#include "probity/common/atomic_file.h"
#include "probity/common/file_read.h"
#include "probity/common/owner_only_file.h"
#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"
#include "probity/warrant/warrant.h"

namespace probity::cli {
namespace {

namespace fs = std::filesystem;
using namespace probity::warrant;

// A private key is created owner-only and durably, and never overwrites another key.
absl::Status WritePrivateKey(const fs::path& path, const std::string& pem) {
  absl::Status status = common::CreateOwnerOnlyFile(path, pem);
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError("cannot create " + path.string() +
                                    " (it exists already; keys are never overwritten)");
  }
  return status;
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(const std::string& text, const char* flag) {
  absl::Duration duration;
  if (!absl::ParseDuration(text, &duration) || duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(std::string(flag) + " takes a positive duration such as " +
                                      "90s, 30m or 24h, not \"" + text + "\"");
  }
  return duration;
}

std::string UtcTime(int64_t seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(seconds),
                          absl::UTCTimeZone());
}

// ---- keygen ---------------------------------------------------------------------------------

struct KeygenFlags {
  std::string out_key, kid, issuer, jwks;
};

absl::Status RunKeygen(const KeygenFlags& flags) {
  auto key = Ed25519PrivateKey::Generate();
  if (!key.ok()) return key.status();
  auto jwk = PublicJwk(*key, flags.kid, flags.issuer);
  if (!jwk.ok()) return jwk.status();
  // Check the JWKS first, so that a clashing kid leaves no orphan key file behind.
  std::string jwks_text;
  if (!flags.jwks.empty()) {
    std::string existing;
    if (fs::exists(flags.jwks)) {
      auto read = common::ReadFileToString(flags.jwks);
      if (!read.ok()) return read.status();
      existing = *std::move(read);
    }
    auto appended = AppendToJwks(existing, *jwk);
    if (!appended.ok()) return appended.status();
    jwks_text = *std::move(appended);
  }
  auto pem = key->ToPem();
  if (!pem.ok()) return pem.status();
  if (absl::Status s = WritePrivateKey(flags.out_key, *pem); !s.ok()) return s;
  if (!flags.jwks.empty()) {
    // Public keys: created as the umask says, replaced atomically so that a verifier reloading
    // the file never reads half of it.
    if (absl::Status s =
            common::WriteFileAtomically(flags.jwks, jwks_text, common::FileMode::kUmaskDefault);
        !s.ok()) {
      return s;
    }
  }
  std::cout << nlohmann::json::parse(*jwk).dump(2) << "\n";
  return absl::OkStatus();
}

// ---- issue ----------------------------------------------------------------------------------

struct IssueFlags {
  std::string key, kid, issuer, subject, audience, case_number, purpose, jti;
  std::vector<std::string> collections;
  int64_t max_queries = 0, max_k = 0;
  std::string ttl = "1h";
};

absl::Status RunIssue(const IssueFlags& flags) {
  auto pem = common::ReadFileToString(flags.key);
  if (!pem.ok()) return pem.status();
  auto key = Ed25519PrivateKey::FromPem(*pem);
  if (!key.ok()) return key.status();
  auto ttl = ParsePositiveDuration(flags.ttl, "--ttl");
  if (!ttl.ok()) return ttl.status();
  Claims claims;
  claims.iss = flags.issuer;
  claims.sub = flags.subject;
  claims.aud = flags.audience;
  if (flags.jti.empty()) {
    auto jti = RandomJti();
    if (!jti.ok()) return jti.status();
    claims.jti = *jti;
  } else {
    claims.jti = flags.jti;
  }
  claims.iat = absl::ToUnixSeconds(absl::Now());
  claims.nbf = claims.iat;
  claims.exp = claims.iat + absl::ToInt64Seconds(*ttl);
  claims.case_number = flags.case_number;
  claims.purpose = flags.purpose;
  claims.collections = flags.collections;
  claims.max_queries = flags.max_queries;
  claims.max_k = flags.max_k;
  auto token = IssueToken(claims, *key, flags.kid);
  if (!token.ok()) return token.status();
  std::cout << *token << "\n";
  return absl::OkStatus();
}

// ---- inspect --------------------------------------------------------------------------------

struct InspectFlags {
  std::string jwks, audience, token, token_file, revocations;
  std::string max_lifetime = "720h", clock_skew = "60s";
  std::string at;  // RFC 3339 time to judge at; now when empty
  std::vector<std::string> collections;
  int64_t k = 0, queries = 1;
};

// Decodes a segment for display even when the token is refused; nullopt when it is no JSON.
std::optional<nlohmann::json> DecodeSegment(std::string_view segment) {
  auto bytes = Base64UrlDecode(segment);
  if (!bytes) return std::nullopt;
  auto json = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

void ExplainClaims(const nlohmann::json& payload, int64_t now) {
  struct Meaning {
    const char* name;
    const char* text;
  };
  static constexpr Meaning kMeanings[] = {
      {"iss", "issuing authority (must be trusted, and own the signing key)"},
      {"sub", "investigator the warrant is issued to"},
      {"aud", "deployment(s) the warrant is addressed to"},
      {"jti", "warrant id: budget and revocation are kept per issuer and id"},
      {"iat", "issued at"},
      {"nbf", "not valid before"},
      {"exp", "expires at"},
      {"case", "case number recorded with every search"},
      {"purpose", "purpose recorded with every search"},
      {"collections", "galleries the warrant may search"},
      {"max_queries", "query vectors the warrant may spend over its life"},
      {"max_k", "most candidates one query may return"},
  };
  std::cout << "claims:\n";
  for (const Meaning& meaning : kMeanings) {
    auto it = payload.find(meaning.name);
    std::string value = it == payload.end() ? "(missing: required)" : it->dump();
    if (it != payload.end() && it->is_number_integer() &&
        (std::string_view(meaning.name) == "iat" || std::string_view(meaning.name) == "nbf" ||
         std::string_view(meaning.name) == "exp")) {
      // Relative times only for plausible dates: the subtraction must not overflow.
      int64_t t = it->get<int64_t>();
      if (t >= 0 && t < (int64_t{1} << 40)) {
        std::string relative = t == now ? "now"
                               : t > now
                                   ? absl::FormatDuration(absl::Seconds(t - now)) + " from now"
                                   : absl::FormatDuration(absl::Seconds(now - t)) + " ago";
        value += " (" + UtcTime(t) + ", " + relative + ")";
      }
    }
    std::cout << "  " << meaning.name << " = " << value << "\n      " << meaning.text << "\n";
  }
  for (auto it = payload.begin(); it != payload.end(); ++it) {
    bool known = false;
    for (const Meaning& meaning : kMeanings) known = known || it.key() == meaning.name;
    if (!known) std::cout << "  " << it.key() << " = " << it->dump() << "\n      (not used)\n";
  }
}

absl::Status RunInspect(const InspectFlags& flags) {
  std::string token = flags.token;
  if (!flags.token_file.empty()) {
    auto read = common::ReadFileToString(flags.token_file);
    if (!read.ok()) return read.status();
    token = *std::move(read);
  }
  // Tolerate what people paste: surrounding whitespace and an "authorization" value.
  auto first = token.find_first_not_of(" \t\r\n");
  token = first == std::string::npos
              ? ""
              : token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  if (token.rfind("Bearer ", 0) == 0) token = token.substr(7);

  absl::Time now = absl::Now();
  if (!flags.at.empty()) {
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, flags.at, &now, &error)) {
      return absl::InvalidArgumentError("--at takes an RFC 3339 time: " + error);
    }
  }
  Verifier::Options options;
  options.policy.audience = flags.audience;
  auto max_lifetime = ParsePositiveDuration(flags.max_lifetime, "--max-lifetime");
  if (!max_lifetime.ok()) return max_lifetime.status();
  options.policy.max_lifetime = *max_lifetime;
  absl::Duration skew;
  if (!absl::ParseDuration(flags.clock_skew, &skew)) {
    return absl::InvalidArgumentError("--clock-skew takes a duration such as 60s");
  }
  options.policy.clock_skew = skew;
  options.jwks_file = flags.jwks;
  options.revocation_file = flags.revocations;
  options.cache_entries = 0;
  auto verifier = Verifier::Create(options);
  if (!verifier.ok()) return verifier.status();

  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 != std::string::npos) {
    auto header = DecodeSegment(std::string_view(token).substr(0, dot1));
    auto payload = DecodeSegment(std::string_view(token).substr(dot1 + 1, dot2 - dot1 - 1));
    std::cout << "header (as sent): " << (header ? header->dump() : "(not base64url JSON)") << "\n";
    if (payload && payload->is_object()) {
      ExplainClaims(*payload, absl::ToUnixSeconds(now));
    } else {
      std::cout << "payload: (not a base64url JSON object)\n";
    }
  }

  auto result = (*verifier)->Verify(token, now);
  std::optional<Refusal> refusal;
  if (auto* r = std::get_if<Refusal>(&result)) refusal = *r;
  if (!refusal) {
    const auto& warrant = std::get<VerifiedWarrant>(result);
    std::cout << "signature: valid, key \"" << warrant.kid << "\" of issuer \""
              << warrant.claims.iss << "\"\n";
    if (!flags.collections.empty() || flags.k > 0) {
      BudgetTracker budget;  // a fresh tracker: the server's count lives in its ledger
      // A scope-only question (--collection without --k) asks about the smallest search.
      Request request{flags.collections, flags.k > 0 ? flags.k : 1, flags.queries, std::nullopt};
      refusal = Authorize(warrant, request, budget);
    }
  }
  if (refusal) {
    std::cout << "verdict: REFUSED " << RefusalCodeName(refusal->code) << " ("
              << (refusal->IsAuthentication() ? "UNAUTHENTICATED" : "PERMISSION_DENIED")
              << "): " << refusal->message << "\n";
    std::cout.flush();
    return absl::PermissionDeniedError(std::string("the warrant would be refused: ") +
                                       std::string(RefusalCodeName(refusal->code)));
  }
  std::cout << "verdict: ACCEPTED at "
            << absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()) << "\n";
  return absl::OkStatus();
}

void AddWarrantCommands(CLI::App& root) {
  CLI::App* warrant = root.add_subcommand("warrant", "Warrant tokens: keys, issuing, inspection");
  warrant->require_subcommand(1);

  auto keygen_flags = std::make_shared<KeygenFlags>();
  CLI::App* keygen = warrant->add_subcommand(
      "keygen", "Create an Ed25519 issuer key (PEM, mode 0600) and print its public JWK");
  keygen->add_option("--out-key", keygen_flags->out_key, "private key file to create (PKCS#8 PEM)")
      ->required();
  keygen->add_option("--kid", keygen_flags->kid, "key id that tokens name in their header")
      ->required();
  keygen->add_option("--iss", keygen_flags->issuer, "issuer the key belongs to")->required();
  keygen->add_option("--jwks", keygen_flags->jwks,
                     "JWKS trust file to append the public key to (created if absent)");
  keygen->callback([keygen_flags] { ExitOnError(RunKeygen(*keygen_flags)); });

  auto issue_flags = std::make_shared<IssueFlags>();
  CLI::App* issue = warrant->add_subcommand("issue", "Sign a warrant and print the token");
  issue->add_option("--key", issue_flags->key, "issuer private key (PEM)")->required();
  issue->add_option("--kid", issue_flags->kid, "key id of that key in the JWKS")->required();
  issue->add_option("--iss", issue_flags->issuer, "issuing authority")->required();
  issue->add_option("--sub", issue_flags->subject, "investigator the warrant is issued to")
      ->required();
  issue->add_option("--aud", issue_flags->audience, "deployment the warrant is for")->required();
  issue->add_option("--case", issue_flags->case_number, "case number")->required();
  issue->add_option("--purpose", issue_flags->purpose, "purpose of the searches")->required();
  issue->add_option("--collections", issue_flags->collections, "collections it may search (a,b)")
      ->required()
      ->delimiter(',');
  issue
      ->add_option("--max-queries", issue_flags->max_queries,
                   "query vectors it may spend over its life")
      ->required()
      ->check(CLI::PositiveNumber);
  issue->add_option("--max-k", issue_flags->max_k, "most candidates per query")
      ->required()
      ->check(CLI::PositiveNumber);
  issue->add_option("--ttl", issue_flags->ttl, "lifetime from now, e.g. 1h or 30m")
      ->capture_default_str();
  issue->add_option("--jti", issue_flags->jti, "warrant id (default: 128 random bits in hex)");
  issue->callback([issue_flags] { ExitOnError(RunIssue(*issue_flags)); });

  auto inspect_flags = std::make_shared<InspectFlags>();
  CLI::App* inspect = warrant->add_subcommand(
      "inspect", "Decode a token, verify it against a JWKS and explain every claim and refusal");
  inspect->add_option("--jwks", inspect_flags->jwks, "JWKS trust file")->required();
  inspect->add_option("--aud", inspect_flags->audience, "this deployment's audience")->required();
  auto* token_option = inspect->add_option("--token", inspect_flags->token, "the token text");
  auto* file_option =
      inspect->add_option("--token-file", inspect_flags->token_file, "file holding the token");
  token_option->excludes(file_option);
  inspect->add_option("--revocations", inspect_flags->revocations,
                      "revocation list (one {\"iss\",\"jti\"} JSON object per line)");
  inspect->add_option("--max-lifetime", inspect_flags->max_lifetime, "policy maximum lifetime")
      ->capture_default_str();
  inspect->add_option("--clock-skew", inspect_flags->clock_skew, "tolerated clock skew")
      ->capture_default_str();
  inspect->add_option("--at", inspect_flags->at, "judge at this RFC 3339 time instead of now");
  inspect
      ->add_option("--collection", inspect_flags->collections,
                   "also check a search of these collections (a,b)")
      ->delimiter(',');
  inspect->add_option("--k", inspect_flags->k, "also check a search for this k");
  inspect->add_option("--queries", inspect_flags->queries, "query vectors of that search")
      ->capture_default_str();
  inspect->callback([inspect_flags, token_option, file_option] {
    if (token_option->count() == 0 && file_option->count() == 0) {
      ExitOnError(absl::InvalidArgumentError("give the token with --token or --token-file"));
    }
    ExitOnError(RunInspect(*inspect_flags));
  });
}

}  // namespace

PROBITY_REGISTER_COMMANDS("warrant", AddWarrantCommands);

}  // namespace probity::cli
