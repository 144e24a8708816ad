#include "quarantine.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "owner_only.h"
#include "posix_file.h"

namespace probity::ledger::internal {
namespace {

absl::StatusOr<std::filesystem::path> QuarantineDirectory(const std::filesystem::path& ledger_dir,
                                                          bool durable) {
  const auto dir = ledger_dir / "quarantine";
  std::error_code error;
  const bool existed = std::filesystem::exists(dir, error);
  if (auto status = CreateOwnerOnlyDirectory(dir); !status.ok()) return status;
  if (!existed && durable) {
    if (auto status = SyncDirectory(ledger_dir); !status.ok()) return status;
  }
  return dir;
}

// "<segment name>.at-<unix micros>.<what>": unique per start, sorts by time per segment.
std::filesystem::path QuarantineName(const std::filesystem::path& dir,
                                     const std::filesystem::path& segment, std::string_view what) {
  return dir / absl::StrCat(segment.filename().string(), ".at-", absl::ToUnixMicros(absl::Now()),
                            ".", std::string(what));
}

}  // namespace

absl::StatusOr<std::filesystem::path> QuarantineSegmentTail(const std::filesystem::path& ledger_dir,
                                                            const std::filesystem::path& segment,
                                                            uint64_t offset, std::string_view tail,
                                                            bool durable) {
  auto dir = QuarantineDirectory(ledger_dir, durable);
  if (!dir.ok()) return dir.status();
  const auto path = QuarantineName(*dir, segment, absl::StrCat("from-byte-", offset));
  auto fd = OpenOwnerOnlyFile(path, O_WRONLY | O_EXCL);
  if (!fd.ok()) return fd.status();
  if (auto status = WriteAll(fd->get(), tail, 0, path); !status.ok()) return status;
  if (durable) {
    if (::fsync(fd->get()) != 0) return ErrnoError("cannot fsync", path);
    if (auto status = SyncDirectory(*dir); !status.ok()) return status;
  }
  // Only once the evidence is durable is it cut from the segment.
  FileDescriptor segment_fd(::open(segment.c_str(), O_WRONLY | O_CLOEXEC));
  if (segment_fd.get() < 0) return ErrnoError("cannot open", segment);
  if (::ftruncate(segment_fd.get(), static_cast<off_t>(offset)) != 0) {
    return ErrnoError("cannot cut", segment);
  }
  if (durable && ::fsync(segment_fd.get()) != 0) return ErrnoError("cannot fsync", segment);
  return path;
}

absl::StatusOr<std::filesystem::path> QuarantineWholeSegment(
    const std::filesystem::path& ledger_dir, const std::filesystem::path& segment, bool durable) {
  auto dir = QuarantineDirectory(ledger_dir, durable);
  if (!dir.ok()) return dir.status();
  const auto path = QuarantineName(*dir, segment, "whole");
  if (std::rename(segment.c_str(), path.c_str()) != 0) return ErrnoError("cannot move", segment);
  if (durable) {
    if (auto status = SyncDirectory(*dir); !status.ok()) return status;
    if (auto status = SyncDirectory(ledger_dir); !status.ok()) return status;
  }
  return path;
}

}  // namespace probity::ledger::internal
