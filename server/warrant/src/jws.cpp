#include "probity/warrant/jws.h"

#include <array>

#include "probity/common/string_view.h"
#include "refusal.h"
#include "strict_json.h"

namespace probity::warrant {
namespace {

using internal::Refuse;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> DecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return table;
}
constexpr std::array<int8_t, 256> kDecode = DecodeTable();

bool IsAllowedAlgorithm(std::string_view alg) { return alg == "EdDSA" || alg == "Ed25519"; }

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t group = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[group >> 18 & 63];
    out += kAlphabet[group >> 12 & 63];
    out += kAlphabet[group >> 6 & 63];
    out += kAlphabet[group & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t group = byte(i) << 16;
    out += kAlphabet[group >> 18 & 63];
    out += kAlphabet[group >> 12 & 63];
  } else if (rest == 2) {
    uint32_t group = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[group >> 18 & 63];
    out += kAlphabet[group >> 12 & 63];
    out += kAlphabet[group >> 6 & 63];
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    int value = kDecode[static_cast<unsigned char>(c)];
    if (value < 0) return std::nullopt;
    bits = (bits << 6 | static_cast<uint32_t>(value)) & 0xffffff;
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>(bits >> bit_count & 0xff);
    }
  }
  // Leftover bits must be zero, or two texts would decode to the same bytes.
  if ((bits & ((1u << bit_count) - 1)) != 0) return std::nullopt;
  return out;
}

std::variant<CompactJws, Refusal> ParseCompactJws(std::string_view token, size_t max_bytes) {
  if (token.empty()) return Refuse(RefusalCode::kMissingToken, "No warrant token was sent.");
  if (token.size() > max_bytes) {
    return Refuse(RefusalCode::kOversizedToken,
                  common::Cat("The warrant token has ", token.size(),
                              " bytes, more than the limit of ", max_bytes, "."));
  }
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return Refuse(RefusalCode::kMalformedToken,
                  "The warrant token is not a compact JWS of three dot-separated parts.");
  }
  CompactJws jws;
  auto header = Base64UrlDecode(token.substr(0, first));
  auto payload = Base64UrlDecode(token.substr(first + 1, second - first - 1));
  auto signature = Base64UrlDecode(token.substr(second + 1));
  if (!header || !payload || !signature || header->empty()) {
    return Refuse(RefusalCode::kMalformedToken,
                  "A part of the warrant token is not unpadded base64url.");
  }
  internal::StrictJson parsed = internal::ParseStrictJsonObject(*header, 4);
  if (!parsed.error.empty()) {
    return Refuse(RefusalCode::kMalformedToken,
                  "The warrant token's header is not acceptable JSON: " + parsed.error + ".");
  }
  const nlohmann::json& h = parsed.value;
  auto alg = h.find("alg");
  if (alg == h.end() || !alg->is_string()) {
    return Refuse(RefusalCode::kMalformedToken, "The warrant token's header names no algorithm.");
  }
  jws.header.alg = alg->get<std::string>();
  if (!IsAllowedAlgorithm(jws.header.alg)) {
    return Refuse(RefusalCode::kAlgorithmNotAllowed,
                  "The warrant token uses algorithm \"" + jws.header.alg +
                      "\"; only EdDSA (Ed25519) signatures are accepted.");
  }
  if (auto typ = h.find("typ"); typ != h.end()) {
    if (!typ->is_string() || typ->get<std::string>() != "JWT") {
      return Refuse(RefusalCode::kMalformedToken,
                    "The warrant token's header has a \"typ\" other than \"JWT\".");
    }
    jws.header.typ = "JWT";
  }
  if (h.contains("crit")) {
    return Refuse(RefusalCode::kMalformedToken,
                  "The warrant token's header has critical extensions (\"crit\"), which are not "
                  "supported.");
  }
  if (auto kid = h.find("kid"); kid != h.end()) {
    if (!kid->is_string()) {
      return Refuse(RefusalCode::kMalformedToken,
                    "The warrant token's header has a \"kid\" that is not a string.");
    }
    jws.header.kid = kid->get<std::string>();
  }
  jws.header_json = std::move(*header);
  jws.payload = std::move(*payload);
  jws.signature = std::move(*signature);
  jws.signing_input = std::string(token.substr(0, second));
  return jws;
}

bool VerifyJwsSignature(const CompactJws& jws, const Ed25519PublicKey& key) {
  return key.Verify(jws.signing_input, jws.signature);
}

absl::StatusOr<std::string> SignCompactJws(std::string_view header_json, std::string_view payload,
                                           const Ed25519PrivateKey& key) {
  std::string signing_input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload);
  absl::StatusOr<std::string> signature = key.Sign(signing_input);
  if (!signature.ok()) return signature.status();
  return signing_input + "." + Base64UrlEncode(*signature);
}

}  // namespace probity::warrant
