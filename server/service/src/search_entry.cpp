#include "probity/service/search_entry.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "probity/common/sha256.h"
#include "probity/service/auth.h"

namespace probity::service {
namespace {

std::string_view ValueBytes(const v1::QueryVector& query) {
  return std::string_view(reinterpret_cast<const char*>(query.values().data()),
                          query.values_size() * sizeof(float));
}

// The longest prefix of at most `limit` bytes that ends on a UTF-8 character boundary: the
// entry's string fields must stay valid UTF-8 for every reader of the ledger.
std::string_view Utf8Prefix(std::string_view text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

std::string BoundedText(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return absl::StrCat(std::string(Utf8Prefix(text, std::min(max_bytes, kCutPrefixBytes))),
                      " [cut: ", text.size(), " bytes in all, SHA-256 ", common::Sha256Hex(text),
                      "]");
}

std::string QueriesSha256(const v1::SearchRequest& request) {
  common::Sha256Hasher hasher;
  for (const v1::QueryVector& query : request.queries()) {
    const uint32_t count = static_cast<uint32_t>(query.values_size());
    const unsigned char count_le[4] = {
        static_cast<unsigned char>(count), static_cast<unsigned char>(count >> 8),
        static_cast<unsigned char>(count >> 16), static_cast<unsigned char>(count >> 24)};
    hasher.Update(count_le, sizeof(count_le));
    hasher.Update(ValueBytes(query));
  }
  absl::StatusOr<common::Sha256Digest> digest = hasher.Finish();
  // An empty digest (OpenSSL failure) is recorded as absent rather than as a wrong value.
  return digest.ok() ? std::string(reinterpret_cast<const char*>(digest->data()), digest->size())
                     : std::string();
}

void RecordQueryHashes(const v1::SearchRequest& request, v1::LedgerEntry& entry) {
  for (const v1::QueryVector& query : request.queries()) {
    entry.add_queries()->set_vector_sha256(common::Sha256Bytes(ValueBytes(query)));
  }
}

bool FitRefusalEntry(const v1::SearchRequest& request, size_t max_bytes, v1::LedgerEntry& entry) {
  auto fits = [&] { return entry.ByteSizeLong() <= max_bytes; };
  if (fits()) return true;
  if (entry.queries_size() > 0) {
    entry.clear_queries();
    entry.set_queries_sha256(QueriesSha256(request));
    if (fits()) return true;
  }
  auto cut = [&](std::string* text) {
    if (text->size() > kCutPrefixBytes) *text = BoundedText(*text, kCutPrefixBytes);
    return fits();
  };
  if (cut(entry.mutable_justification())) return true;
  if (cut(entry.mutable_refusal()->mutable_message())) return true;
  for (std::string& collection : *entry.mutable_collections()) {
    if (cut(&collection)) return true;
  }
  if (!entry.has_investigator()) return false;
  return cut(entry.mutable_investigator()->mutable_tls_identity());
}

void FillWarrantFields(const warrant::VerifiedWarrant& warrant, v1::LedgerEntry& entry) {
  const warrant::Claims& claims = warrant.claims;
  entry.set_warrant_id(claims.jti);
  entry.set_issuer(claims.iss);
  entry.mutable_investigator()->set_sub(claims.sub);
  entry.set_case_number(claims.case_number);
  entry.set_purpose(claims.purpose);
  v1::WarrantTerms* terms = entry.mutable_warrant_terms();
  terms->set_issued_at(claims.iat);
  terms->set_not_before(claims.nbf);
  terms->set_expires(claims.exp);
  terms->set_max_queries(claims.max_queries);
  terms->set_max_k(claims.max_k);
}

}  // namespace probity::service
