#include "segment_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <charconv>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "posix_file.h"
#include "probity/common/file_read.h"

namespace probity::ledger::internal {
namespace {

constexpr std::string_view kSegmentMagic = "PRBLSEG2";
constexpr std::string_view kFormat1Magic = "PRBLSEG1";
constexpr std::string_view kSegmentPrefix = "segment-";
constexpr std::string_view kSegmentSuffix = ".log";

using Crc32cComputer = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void PutLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(std::string_view in, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = value << 8 | static_cast<uint8_t>(in[i]);
  return value;
}

// CRC32C over a record's type and length bytes and its payload.
uint32_t RecordChecksum(std::string_view type_and_length, std::string_view payload) {
  Crc32cComputer crc;
  crc.process_bytes(type_and_length.data(), type_and_length.size());
  crc.process_bytes(payload.data(), payload.size());
  return crc.checksum();
}

bool IsKnownType(uint8_t type) {
  return type == static_cast<uint8_t>(RecordType::kEntry) ||
         type == static_cast<uint8_t>(RecordType::kCommit);
}

}  // namespace

uint32_t Crc32c(std::string_view bytes) {
  Crc32cComputer crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

std::string EncodeSegmentHeader(uint64_t first_index, uint64_t previous_first_index) {
  std::string header(kSegmentMagic);
  PutLittleEndian(header, first_index, 8);
  PutLittleEndian(header, previous_first_index, 8);
  PutLittleEndian(header, Crc32c(header), 4);
  return header;
}

std::string EncodeRecord(RecordType type, std::string_view payload) {
  std::string record;
  record.reserve(kRecordHeaderBytes + payload.size());
  record.push_back(static_cast<char>(type));
  PutLittleEndian(record, payload.size(), 4);
  PutLittleEndian(record, RecordChecksum(record, payload), 4);
  record.append(payload);
  return record;
}

std::string SegmentFileName(uint64_t first_index) {
  return absl::StrFormat("%s%020u%s", kSegmentPrefix, first_index, kSegmentSuffix);
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + 20 + kSegmentSuffix.size() ||
      !name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  const std::string_view digits = name.substr(kSegmentPrefix.size(), 20);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

absl::StatusOr<std::vector<SegmentName>> ListSegments(const std::filesystem::path& dir) {
  std::vector<SegmentName> segments;
  std::error_code error;
  for (const auto& item : std::filesystem::directory_iterator(dir, error)) {
    if (auto first = ParseSegmentFileName(item.path().filename().string())) {
      segments.push_back({item.path(), *first});
    }
  }
  if (error) {
    return absl::NotFoundError(absl::StrCat("cannot list ", dir.string(), ": ", error.message()));
  }
  std::sort(segments.begin(), segments.end(),
            [](const auto& a, const auto& b) { return a.first_index < b.first_index; });
  return segments;
}

SegmentContents DecodeSegment(std::string_view bytes, uint64_t first_index,
                              const RecordVisitor& visit) {
  SegmentContents contents;
  if (bytes.size() < kSegmentHeaderBytes) {
    contents.damage = RecordDamage{first_index, 0, true, "segment header is incomplete"};
    return contents;
  }
  const std::string_view header = bytes.substr(0, kSegmentHeaderBytes);
  if (header.substr(0, kFormat1Magic.size()) == kFormat1Magic) {
    contents.damage = RecordDamage{
        first_index, 0, false,
        "segment is in format 1 (no commit markers), written by an older Probity; this version "
        "reads format 2 only"};
    contents.older_format = true;
    return contents;
  }
  if (header.substr(0, kSegmentMagic.size()) != kSegmentMagic ||
      GetLittleEndian(header.substr(24), 4) != Crc32c(header.substr(0, 24))) {
    contents.damage = RecordDamage{first_index, 0, false, "segment header is damaged"};
    return contents;
  }
  contents.header.first_index = GetLittleEndian(header.substr(8), 8);
  contents.header.previous_first_index = GetLittleEndian(header.substr(16), 8);
  if (contents.header.first_index != first_index) {
    contents.damage =
        RecordDamage{first_index, 0, false,
                     absl::StrCat("segment header says first entry ", contents.header.first_index,
                                  ", its file name says ", first_index)};
    return contents;
  }
  uint64_t offset = kSegmentHeaderBytes;
  uint64_t index = first_index;
  while (offset < bytes.size()) {
    const uint64_t remaining = bytes.size() - offset;
    if (remaining < kRecordHeaderBytes) {
      contents.damage = RecordDamage{index, offset, true, "record header is incomplete"};
      break;
    }
    const std::string_view record_header = bytes.substr(offset, kRecordHeaderBytes);
    const uint8_t type = static_cast<uint8_t>(record_header[0]);
    const uint64_t length = GetLittleEndian(record_header.substr(1), 4);
    if (length > remaining - kRecordHeaderBytes) {
      contents.damage = RecordDamage{
          index, offset, true,
          absl::StrCat("record of ", length, " bytes runs past the end of the segment")};
      break;
    }
    const std::string_view payload = bytes.substr(offset + kRecordHeaderBytes, length);
    if (RecordChecksum(record_header.substr(0, 5), payload) !=
        GetLittleEndian(record_header.substr(5), 4)) {
      contents.damage = RecordDamage{index, offset, false, "record checksum (CRC32C) mismatch"};
      break;
    }
    if (!IsKnownType(type)) {
      contents.damage =
          RecordDamage{index, offset, false, absl::StrCat("unknown record type ", int{type})};
      break;
    }
    const RecordInfo record{static_cast<RecordType>(type), offset,
                            offset + kRecordHeaderBytes + length, index};
    contents.records.push_back(record);
    if (visit) visit(record, payload);
    offset = record.end;
    if (record.type == RecordType::kEntry) ++index;
  }
  contents.entry_count = index - first_index;
  contents.intact_bytes = contents.damage ? contents.damage->offset : bytes.size();
  return contents;
}

absl::StatusOr<SegmentContents> ReadSegment(const std::filesystem::path& path, uint64_t first_index,
                                            const RecordVisitor& visit) {
  auto bytes = common::ReadFileToString(path);
  if (!bytes.ok()) return bytes.status();
  return DecodeSegment(*bytes, first_index, visit);
}

absl::StatusOr<std::string> ReadEntryRecordAt(const std::filesystem::path& path, uint64_t offset) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError("cannot open", path);
  std::string header(kRecordHeaderBytes, '\0');
  if (::pread(fd.get(), header.data(), header.size(), static_cast<off_t>(offset)) !=
      static_cast<ssize_t>(header.size())) {
    return absl::DataLossError(absl::StrCat("short read of a record in ", path.string()));
  }
  const uint64_t length = GetLittleEndian(std::string_view(header).substr(1), 4);
  if (static_cast<uint8_t>(header[0]) != static_cast<uint8_t>(RecordType::kEntry) ||
      length > kMaxRecordBytes) {
    return absl::DataLossError(
        absl::StrCat("no entry record at offset ", offset, " of ", path.string()));
  }
  std::string payload(length, '\0');
  if (::pread(fd.get(), payload.data(), length, static_cast<off_t>(offset + kRecordHeaderBytes)) !=
      static_cast<ssize_t>(length)) {
    return absl::DataLossError(absl::StrCat("short read of a record in ", path.string()));
  }
  if (RecordChecksum(std::string_view(header).substr(0, 5), payload) !=
      GetLittleEndian(std::string_view(header).substr(5), 4)) {
    return absl::DataLossError(
        absl::StrCat("record checksum mismatch at offset ", offset, " of ", path.string()));
  }
  return payload;
}

}  // namespace probity::ledger::internal
