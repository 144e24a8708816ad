#pragma once

// Shared helpers for the ledger tests: a scratch directory, a fresh signing key per test,
// sample entries, and an independent reader of the segment file format for tampering.

#include <gtest/gtest.h>

#include <boost/crc.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/scoped_temp_dir.h"
#include "probity/common/file_read.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger::testing {

using ScratchDir = test_support::ScopedTempDir;

inline constexpr char kOrigin[] = "probity.test/ledger";

inline Options MakeOptions(const ScratchDir& scratch, uint64_t max_segment_bytes = 64ull << 20) {
  Options options;
  options.dir = scratch.path() / "log";
  options.origin = kOrigin;
  options.signing_key = scratch.path() / "signing.pem";
  options.max_segment_bytes = max_segment_bytes;
  if (!std::filesystem::exists(options.signing_key)) {
    EXPECT_TRUE(GenerateSigningKey(options.signing_key).ok());
  }
  return options;
}

inline v1::LedgerEntry SampleEntry(uint64_t n, const std::string& tag = "w") {
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(1700000000000000 + static_cast<int64_t>(n) * 1000);
  entry.set_kind(n % 3 == 0 ? v1::ENTRY_KIND_REFUSAL : v1::ENTRY_KIND_SEARCH);
  entry.set_warrant_id(tag + "-" + std::to_string(n));
  entry.set_case_number(n % 2 ? "CASE-odd" : "CASE-even");
  entry.set_purpose("test");
  entry.add_collections("gallery");
  auto* query = entry.add_queries();
  query->set_vector_sha256(std::string(32, static_cast<char>(n & 0xff)));
  auto* candidate = query->add_candidates();
  candidate->set_id(static_cast<int64_t>(n));
  candidate->set_score(0.5f);
  entry.set_outcome(v1::OUTCOME_ANSWERED);
  return entry;
}

// The file's bytes, or "" when it cannot be read (the test's assertions then fail on content).
inline std::string ReadFile(const std::filesystem::path& path) {
  return common::ReadFileToString(path).value_or("");
}

inline void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::filesystem::path> SegmentFiles(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& item : std::filesystem::directory_iterator(dir)) {
    if (item.path().filename().string().starts_with("segment-")) files.push_back(item.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// An independent reading of the documented segment layout (format 2): a 28-byte header, then
// records of u8 type | u32 length | u32 CRC32C(type || length || payload) | payload.
inline constexpr size_t kHeaderBytes = 28;
inline constexpr size_t kRecordHeaderBytes = 9;
inline constexpr uint8_t kEntryRecord = 1;
inline constexpr uint8_t kCommitRecord = 2;

struct RawRecord {
  uint64_t offset;
  uint8_t type;
  std::string payload;
};

inline uint32_t LoadLittleEndian32(const std::string& bytes, size_t at) {
  return uint32_t(uint8_t(bytes[at])) | uint32_t(uint8_t(bytes[at + 1])) << 8 |
         uint32_t(uint8_t(bytes[at + 2])) << 16 | uint32_t(uint8_t(bytes[at + 3])) << 24;
}

// Every record, entries and commit markers.
inline std::vector<RawRecord> ParseAllRecords(const std::string& segment) {
  std::vector<RawRecord> records;
  size_t offset = kHeaderBytes;
  while (offset + kRecordHeaderBytes <= segment.size()) {
    const uint32_t length = LoadLittleEndian32(segment, offset + 1);
    records.push_back(
        {offset, uint8_t(segment[offset]), segment.substr(offset + kRecordHeaderBytes, length)});
    offset += kRecordHeaderBytes + length;
  }
  return records;
}

// The entry records only.
inline std::vector<RawRecord> ParseRecords(const std::string& segment) {
  std::vector<RawRecord> entries;
  for (auto& record : ParseAllRecords(segment)) {
    if (record.type == kEntryRecord) entries.push_back(std::move(record));
  }
  return entries;
}

inline std::string EncodeRawRecord(const std::string& payload, uint8_t type = kEntryRecord) {
  std::string record(1, static_cast<char>(type));
  const uint32_t length = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) record.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(record.data(), 5);
  crc.process_bytes(payload.data(), payload.size());
  const uint32_t checksum = crc.checksum();
  for (int i = 0; i < 4; ++i) record.push_back(static_cast<char>((checksum >> (8 * i)) & 0xff));
  return record + payload;
}

// Rebuilds a segment from its header and the given records, with valid checksums.
inline std::string RebuildSegment(const std::string& original,
                                  const std::vector<RawRecord>& records) {
  std::string segment = original.substr(0, kHeaderBytes);
  for (const auto& record : records) segment += EncodeRawRecord(record.payload, record.type);
  return segment;
}

inline uint64_t FileMode(const std::filesystem::path& path) {
  return static_cast<uint64_t>(std::filesystem::status(path).permissions() &
                               std::filesystem::perms::all);
}

}  // namespace probity::ledger::testing
