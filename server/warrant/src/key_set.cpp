#include "probity/warrant/key_set.h"

#include "probity/common/file_read.h"
#include "probity/common/string_view.h"
#include "probity/warrant/jws.h"
#include "strict_json.h"

namespace probity::warrant {
namespace {

using Json = nlohmann::json;

absl::StatusOr<std::string> StringMember(const Json& jwk, std::string_view name, size_t index) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError(
        common::Cat("JWKS key ", index, " needs a non-empty string member \"", name, "\""));
  }
  return it->get<std::string>();
}

absl::Status CheckOptional(const Json& jwk, std::string_view name,
                           std::initializer_list<std::string_view> allowed, size_t index) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return absl::OkStatus();
  if (it->is_string()) {
    for (std::string_view value : allowed) {
      if (it->get_ref<const std::string&>() == value) return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      common::Cat("JWKS key ", index, " has a \"", name, "\" that is not for EdDSA signatures"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::Parse(std::string_view jwks_json) {
  internal::StrictJson parsed = internal::ParseStrictJsonObject(jwks_json);
  if (!parsed.error.empty()) return absl::InvalidArgumentError("JWKS: " + parsed.error);
  auto keys = parsed.value.find("keys");
  if (keys == parsed.value.end() || !keys->is_array()) {
    return absl::InvalidArgumentError("JWKS: no \"keys\" array");
  }
  std::shared_ptr<KeySet> set(new KeySet());
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& jwk = (*keys)[i];
    if (!jwk.is_object())
      return absl::InvalidArgumentError(common::Cat("JWKS key ", i, " is not an object"));
    auto kty = StringMember(jwk, "kty", i);
    auto crv = StringMember(jwk, "crv", i);
    if (!kty.ok() || !crv.ok() || *kty != "OKP" || *crv != "Ed25519") {
      return absl::InvalidArgumentError(
          common::Cat("JWKS key ", i, " is not an Ed25519 key (kty OKP, crv Ed25519)"));
    }
    if (jwk.contains("d")) {
      return absl::InvalidArgumentError(
          common::Cat("JWKS key ", i, " carries a private key (\"d\"); publish public keys only"));
    }
    if (absl::Status s = CheckOptional(jwk, "use", {"sig"}, i); !s.ok()) return s;
    if (absl::Status s = CheckOptional(jwk, "alg", {"EdDSA", "Ed25519"}, i); !s.ok()) return s;
    auto kid = StringMember(jwk, "kid", i);
    if (!kid.ok()) return kid.status();
    auto issuer = StringMember(jwk, "iss", i);
    if (!issuer.ok()) return issuer.status();
    auto x = StringMember(jwk, "x", i);
    if (!x.ok()) return x.status();
    std::optional<std::string> raw = Base64UrlDecode(*x);
    if (!raw)
      return absl::InvalidArgumentError(common::Cat("JWKS key ", i, ": \"x\" is not base64url"));
    auto key = Ed25519PublicKey::FromRaw(*raw);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          common::Cat("JWKS key \"", *kid, "\": ", key.status().message()));
    }
    if (set->Find(*kid) != nullptr) {
      return absl::InvalidArgumentError(common::Cat("JWKS: kid \"", *kid, "\" appears twice"));
    }
    set->keys_.push_back(TrustedKey{std::move(*kid), std::move(*issuer), std::move(*key)});
  }
  return std::shared_ptr<const KeySet>(std::move(set));
}

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::Load(const std::filesystem::path& file) {
  absl::StatusOr<std::string> text = common::ReadFileToString(file);
  if (!text.ok()) return text.status();
  auto set = Parse(*text);
  if (!set.ok()) {
    return absl::InvalidArgumentError(common::Cat(file.string(), ": ", set.status().message()));
  }
  return set;
}

const TrustedKey* KeySet::Find(std::string_view kid) const {
  for (const TrustedKey& key : keys_) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

bool KeySet::TrustsIssuer(std::string_view issuer) const {
  for (const TrustedKey& key : keys_) {
    if (key.issuer == issuer) return true;
  }
  return false;
}

}  // namespace probity::warrant
