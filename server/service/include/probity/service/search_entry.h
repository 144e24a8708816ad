#pragma once

// What a search request leaves in the ledger, and the bounds that keep it small whatever the
// caller sends: free text is cut to a bounded prefix (with its length and SHA-256, so that the
// original can still be matched), and a batch of query vectors becomes one record per vector
// or, past a limit, one digest over all of them.

#include <cstddef>
#include <string>
#include <string_view>

#include "probity/v1/ledger_entry.pb.h"
#include "probity/v1/search.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

inline constexpr size_t kMaxRecordedNameBytes = 256;      // collection, TLS identity
inline constexpr size_t kMaxRecordedMessageBytes = 1024;  // a refusal's message
inline constexpr size_t kCutPrefixBytes = 256;            // what is kept of a text over its bound

// `text` itself when it has at most max_bytes; otherwise its first bytes (at most
// min(max_bytes, kCutPrefixBytes), cut at a UTF-8 character boundary) followed by
// " [cut: N bytes in all, SHA-256 <hex>]".
std::string BoundedText(std::string_view text, size_t max_bytes);

// What every entry under a verified warrant carries: its id, issuer, subject, case, purpose and
// terms (validity, budget, max k), so that an auditor sees them without the token.
void FillWarrantFields(const warrant::VerifiedWarrant& warrant, v1::LedgerEntry& entry);

// SHA-256 over every query vector of the request in order, each as its value count (uint32,
// little-endian) followed by its float32 values (little-endian).
std::string QueriesSha256(const v1::SearchRequest& request);

// One QueryRecord with vector_sha256 per query vector (candidates are added after the search).
void RecordQueryHashes(const v1::SearchRequest& request, v1::LedgerEntry& entry);

// Makes a refusal entry fit max_bytes, giving up detail in this order: the per-vector records
// give way to queries_sha256, then justification, refusal message, collection and identity are
// cut to short prefixes. Returns whether the entry now fits.
bool FitRefusalEntry(const v1::SearchRequest& request, size_t max_bytes, v1::LedgerEntry& entry);

}  // namespace probity::service
