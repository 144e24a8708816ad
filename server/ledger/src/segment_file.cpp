#include "segment_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "string_util.h"

namespace probity::ledger::internal {
namespace {

constexpr std::string_view kSegmentMagic = "PRBLSEG1";
constexpr std::string_view kSegmentPrefix = "segment-";
constexpr std::string_view kSegmentSuffix = ".log";

void PutLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(std::string_view in, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = value << 8 | static_cast<uint8_t>(in[i]);
  return value;
}

absl::Status ErrnoError(std::string_view what, const std::filesystem::path& path) {
  return absl::InternalError(
      absl::StrCat(AsAbsl(what), " ", path.string(), ": ", std::strerror(errno)));
}

}  // namespace

uint32_t Crc32c(std::string_view bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

std::string EncodeSegmentHeader(uint64_t first_index) {
  std::string header(kSegmentMagic);
  PutLittleEndian(header, first_index, 8);
  PutLittleEndian(header, Crc32c(header), 4);
  return header;
}

std::string EncodeRecord(std::string_view payload) {
  std::string length;
  PutLittleEndian(length, payload.size(), 4);
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(length.data(), length.size());
  crc.process_bytes(payload.data(), payload.size());
  std::string record = length;
  PutLittleEndian(record, crc.checksum(), 4);
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

absl::StatusOr<SegmentContents> ReadSegment(const std::filesystem::path& path, uint64_t first_index,
                                            const RecordVisitor& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open segment ", path.string()));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read segment ", path.string()));

  SegmentContents contents;
  if (bytes.size() < kSegmentHeaderBytes) {
    contents.damage = RecordDamage{first_index, 0, true, "segment header is incomplete"};
    return contents;
  }
  const std::string_view header(bytes.data(), kSegmentHeaderBytes);
  if (header.substr(0, kSegmentMagic.size()) != kSegmentMagic ||
      GetLittleEndian(header.substr(16), 4) != Crc32c(header.substr(0, 16))) {
    contents.damage = RecordDamage{first_index, 0, false, "segment header is damaged"};
    return contents;
  }
  if (const uint64_t stated = GetLittleEndian(header.substr(8), 8); stated != first_index) {
    return absl::DataLossError(
        absl::StrCat("segment ", path.filename().string(), ": header says first entry ", stated));
  }
  uint64_t offset = kSegmentHeaderBytes;
  uint64_t index = first_index;
  while (offset < bytes.size()) {
    const uint64_t remaining = bytes.size() - offset;
    if (remaining < kRecordHeaderBytes) {
      contents.damage = RecordDamage{index, offset, true, "record header is incomplete"};
      break;
    }
    const std::string_view record_header(bytes.data() + offset, kRecordHeaderBytes);
    const uint64_t length = GetLittleEndian(record_header, 4);
    if (length > remaining - kRecordHeaderBytes) {
      contents.damage = RecordDamage{
          index, offset, true,
          absl::StrCat("record of ", length, " bytes runs past the end of the segment")};
      break;
    }
    const std::string_view payload(bytes.data() + offset + kRecordHeaderBytes, length);
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
    crc.process_bytes(record_header.data(), 4);
    crc.process_bytes(payload.data(), payload.size());
    if (crc.checksum() != GetLittleEndian(record_header.substr(4), 4)) {
      contents.damage = RecordDamage{index, offset, false, "record checksum (CRC32C) mismatch"};
      break;
    }
    contents.record_offsets.push_back(offset);
    if (visit) visit(index, payload);
    offset += kRecordHeaderBytes + length;
    ++index;
  }
  contents.intact_bytes = contents.damage ? contents.damage->offset : bytes.size();
  return contents;
}

absl::StatusOr<std::string> ReadRecordAt(const std::filesystem::path& path, uint64_t offset) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  std::string header(kRecordHeaderBytes, '\0');
  std::string record;
  absl::Status status;
  if (::pread(fd, header.data(), header.size(), static_cast<off_t>(offset)) !=
      static_cast<ssize_t>(header.size())) {
    status = absl::DataLossError(absl::StrCat("short read of a record in ", path.string()));
  } else {
    const uint64_t length = GetLittleEndian(header, 4);
    std::string payload(length, '\0');
    if (length > kMaxRecordBytes ||
        ::pread(fd, payload.data(), length, static_cast<off_t>(offset + kRecordHeaderBytes)) !=
            static_cast<ssize_t>(length)) {
      status = absl::DataLossError(absl::StrCat("short read of a record in ", path.string()));
    } else if (EncodeRecord(payload).substr(0, kRecordHeaderBytes) != header) {
      status = absl::DataLossError(
          absl::StrCat("record checksum mismatch at offset ", offset, " of ", path.string()));
    } else {
      record = std::move(payload);
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return record;
}

absl::Status SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir);
  const int result = ::fsync(fd);
  ::close(fd);
  if (result != 0) return ErrnoError("cannot fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace probity::ledger::internal
