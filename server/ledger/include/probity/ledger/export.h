#pragma once

// Entries of a ledger directory as JSON lines, for auditors' own tools (`probity ledger show`
// and `probity ledger export`). One line per entry:
//
//   {"index":N,"entry":{...LedgerEntry as proto3 JSON...}}
//
// and with ExportDetail::kStoredBytes also the exact stored bytes and their RFC 6962 leaf hash,
// so that an outside tool can re-hash exactly what the tree commits to:
//
//   {"index":N,"leaf_hash":"<hex>","bytes":"<base64>","entry":{...}}
//
// Proto field names are kept (snake_case) and fields with their default value are printed too
// (an id 0, a score 0 or a shard 0 is data).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace probity::ledger {

// Which entries to write; empty or unset fields match every entry.
struct ExportFilter {
  std::string warrant_id;
  std::string case_number;
  std::optional<int64_t> since_unix_micros;  // entries at or after
  std::optional<int64_t> until_unix_micros;  // entries before
  uint64_t from = 0;                         // first entry index to read
  uint64_t limit = 0;                        // stop after this many matching entries; 0: no limit
};

enum class ExportDetail {
  kEntries,      // index and entry
  kStoredBytes,  // also the stored bytes (base64) and their leaf hash (hex)
};

// Writes the acknowledged entries of the ledger in `dir` that match `filter` to `out`, one JSON
// line each, in index order (ReadEntries). DATA_LOSS when an entry is not a LedgerEntry message;
// ReadEntries' error when the ledger is damaged. Lines written before an error stay written.
absl::Status ExportEntries(const std::filesystem::path& dir, const ExportFilter& filter,
                           ExportDetail detail, std::ostream& out);

}  // namespace probity::ledger
