#include "probity/warrant/claims.h"

#include <limits>

#include "probity/common/string_view.h"
#include "refusal.h"
#include "strict_json.h"

namespace probity::warrant {
namespace {

using internal::Refuse;
using Json = nlohmann::json;

Refusal Missing(std::string_view name) {
  return Refuse(RefusalCode::kMissingClaim,
                common::Cat("The warrant has no \"", name, "\" claim, which is required."));
}

Refusal Invalid(std::string_view name, std::string_view expected) {
  return Refuse(RefusalCode::kInvalidClaim,
                common::Cat("The warrant's \"", name, "\" claim is not ", expected, "."));
}

std::optional<Refusal> ReadString(const Json& payload, std::string_view name, std::string& out) {
  auto it = payload.find(name);
  if (it == payload.end()) return Missing(name);
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Invalid(name, "a non-empty string");
  }
  out = it->get<std::string>();
  return std::nullopt;
}

// Integers only: a float or a number beyond int64 is refused rather than rounded.
std::optional<Refusal> ReadInteger(const Json& payload, std::string_view name, int64_t minimum,
                                   int64_t& out) {
  auto it = payload.find(name);
  if (it == payload.end()) return Missing(name);
  std::string expected = common::Cat("an integer of at least ", minimum);
  if (it->is_number_unsigned()) {
    uint64_t value = it->get<uint64_t>();
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(name, expected);
    }
    out = static_cast<int64_t>(value);
  } else if (it->is_number_integer()) {
    out = it->get<int64_t>();
  } else {
    return Invalid(name, expected);
  }
  if (out < minimum) return Invalid(name, expected);
  return std::nullopt;
}

std::optional<Refusal> ReadStringList(const Json& value, std::string_view name,
                                      std::vector<std::string>& out) {
  if (!value.is_array() || value.empty()) return Invalid(name, "a non-empty array of strings");
  for (const Json& item : value) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      return Invalid(name, "a non-empty array of non-empty strings");
    }
    out.push_back(item.get<std::string>());
  }
  return std::nullopt;
}

std::optional<Refusal> ReadAudiences(const Json& payload, std::vector<std::string>& out) {
  auto it = payload.find("aud");
  if (it == payload.end()) return Missing("aud");
  if (it->is_string() && !it->get_ref<const std::string&>().empty()) {
    out.push_back(it->get<std::string>());
    return std::nullopt;
  }
  if (it->is_array()) return ReadStringList(*it, "aud", out);
  return Invalid("aud", "a non-empty string or array of strings");
}

}  // namespace

std::variant<Claims, Refusal> ParseClaims(std::string_view payload_json) {
  internal::StrictJson parsed = internal::ParseStrictJsonObject(payload_json);
  if (!parsed.error.empty()) {
    return Refuse(RefusalCode::kMalformedToken,
                  "The warrant token's payload is not acceptable JSON: " + parsed.error + ".");
  }
  const Json& payload = parsed.value;
  Claims claims;
  std::optional<Refusal> refusal;
  if ((refusal = ReadString(payload, "iss", claims.iss)) ||
      (refusal = ReadString(payload, "sub", claims.sub)) ||
      (refusal = ReadAudiences(payload, claims.audiences)) ||
      (refusal = ReadString(payload, "jti", claims.jti)) ||
      (refusal = ReadInteger(payload, "iat", 0, claims.iat)) ||
      (refusal = ReadInteger(payload, "nbf", 0, claims.nbf)) ||
      (refusal = ReadInteger(payload, "exp", 0, claims.exp)) ||
      (refusal = ReadString(payload, "case", claims.case_number)) ||
      (refusal = ReadString(payload, "purpose", claims.purpose)) ||
      (refusal = ReadInteger(payload, "max_queries", 1, claims.max_queries)) ||
      (refusal = ReadInteger(payload, "max_k", 1, claims.max_k))) {
    return *refusal;
  }
  auto collections = payload.find("collections");
  if (collections == payload.end()) return Missing("collections");
  if ((refusal = ReadStringList(*collections, "collections", claims.collections))) {
    return *refusal;
  }
  if (claims.exp <= claims.nbf) {
    return Refuse(RefusalCode::kInvalidClaim,
                  "The warrant expires (\"exp\") no later than it becomes valid (\"nbf\").");
  }
  claims.aud = claims.audiences.front();
  return claims;
}

}  // namespace probity::warrant
