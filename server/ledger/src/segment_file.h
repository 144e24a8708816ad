#pragma once

// On-disk segment format. A segment file "segment-<first entry index, 20 digits>.log" is
//   header: "PRBLSEG1" | u64 first entry index (LE) | u32 CRC32C of the preceding 16 bytes
//   records: u32 payload length (LE) | u32 CRC32C(length bytes || payload) | payload
// The first index in both the name and the header makes a missing segment visible.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace probity::ledger::internal {

inline constexpr size_t kSegmentHeaderBytes = 20;
inline constexpr size_t kRecordHeaderBytes = 8;
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;

uint32_t Crc32c(std::string_view bytes);
std::string EncodeSegmentHeader(uint64_t first_index);
std::string EncodeRecord(std::string_view payload);
std::string SegmentFileName(uint64_t first_index);
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

// Segment files of a ledger directory, ordered by first index (names that are not segment
// files are ignored).
struct SegmentName {
  std::filesystem::path path;
  uint64_t first_index = 0;
};
absl::StatusOr<std::vector<SegmentName>> ListSegments(const std::filesystem::path& dir);

// Where reading a segment stopped before its end, and why.
struct RecordDamage {
  uint64_t entry_index = 0;  // index the damaged record would have had
  uint64_t offset = 0;       // byte offset of its record header (0: the segment header)
  bool incomplete = false;   // the file ends inside the record (a torn write), else bad CRC
  std::string what;
};

struct SegmentContents {
  std::vector<uint64_t> record_offsets;  // of each intact record, in order
  uint64_t intact_bytes = 0;             // header plus intact records
  std::optional<RecordDamage> damage;
};

// Reads a segment whose header must say `first_index`; calls visit(index, payload) for each
// intact record until the end or the first damaged record. Errors only for I/O failures and
// for a header that names another first index.
using RecordVisitor = std::function<void(uint64_t index, std::string_view payload)>;
absl::StatusOr<SegmentContents> ReadSegment(const std::filesystem::path& path, uint64_t first_index,
                                            const RecordVisitor& visit);

// Reads one record at `offset` and checks its CRC.
absl::StatusOr<std::string> ReadRecordAt(const std::filesystem::path& path, uint64_t offset);

// fsync of a directory, so that a file created in it survives a crash.
absl::Status SyncDirectory(const std::filesystem::path& dir);

}  // namespace probity::ledger::internal
