#pragma once

// On-disk segment format (format 2). A segment file "segment-<first entry index, 20 digits>.log"
// is
//   header:  "PRBLSEG2" | u64 first entry index | u64 first entry index of the previous segment
//            (all ones for the first segment) | u32 CRC32C of the preceding 24 bytes
//   records: u8 type | u32 payload length | u32 CRC32C(type || length || payload) | payload
// Integers are little-endian. Record types: 1 = entry (payload = the serialized LedgerEntry,
// exactly the bytes hashed into the tree), 2 = commit marker (payload = the signed checkpoint
// note of the tree after every entry before it). The first index in both the name and the
// header, and the link to the previous segment, make a missing or renamed segment visible.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace probity::ledger::internal {

inline constexpr size_t kSegmentHeaderBytes = 28;
inline constexpr size_t kRecordHeaderBytes = 9;
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;
inline constexpr uint64_t kNoPreviousSegment = ~uint64_t{0};

enum class RecordType : uint8_t { kEntry = 1, kCommit = 2 };

uint32_t Crc32c(std::string_view bytes);
std::string EncodeSegmentHeader(uint64_t first_index, uint64_t previous_first_index);
std::string EncodeRecord(RecordType type, std::string_view payload);
std::string SegmentFileName(uint64_t first_index);
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

// Segment files of a ledger directory, ordered by first index (names that are not segment
// files are ignored).
struct SegmentName {
  std::filesystem::path path;
  uint64_t first_index = 0;
};
absl::StatusOr<std::vector<SegmentName>> ListSegments(const std::filesystem::path& dir);

struct SegmentHeader {
  uint64_t first_index = 0;
  uint64_t previous_first_index = kNoPreviousSegment;
};

// Where decoding a segment stopped before its end, and why.
struct RecordDamage {
  uint64_t entry_index = 0;  // index the next entry would have had
  uint64_t offset = 0;       // byte offset of the damaged record header (0: the segment header)
  bool incomplete = false;   // the bytes end inside the header or record (a torn write)
  std::string what;
};

struct RecordInfo {
  RecordType type = RecordType::kEntry;
  uint64_t offset = 0;       // of the record header
  uint64_t end = 0;          // offset just past the record
  uint64_t entry_index = 0;  // an entry's index; for a commit marker, the entries before it
};

struct SegmentContents {
  SegmentHeader header;
  std::vector<RecordInfo> records;  // every intact record, in order
  uint64_t entry_count = 0;         // intact entry records
  uint64_t intact_bytes = 0;        // header plus intact records
  std::optional<RecordDamage> damage;
  bool older_format = false;  // a format 1 segment (no commit markers): not read
};

// Decodes a segment's bytes; its header must say `first_index`. Calls visit(record, payload)
// for each intact record until the end or the first damage (a short or checksum-failing header
// or record, an unknown record type, a header naming another first index). Never fails:
// damage is reported in the result. Safe on any input (fuzzed).
using RecordVisitor = std::function<void(const RecordInfo& record, std::string_view payload)>;
SegmentContents DecodeSegment(std::string_view bytes, uint64_t first_index,
                              const RecordVisitor& visit = nullptr);

// Reads and decodes a segment file; errors only for I/O failures.
absl::StatusOr<SegmentContents> ReadSegment(const std::filesystem::path& path, uint64_t first_index,
                                            const RecordVisitor& visit = nullptr);

// Reads the entry record at `offset` and checks its type and CRC.
absl::StatusOr<std::string> ReadEntryRecordAt(const std::filesystem::path& path, uint64_t offset);

}  // namespace probity::ledger::internal
