#pragma once

// Bytes Open will not adopt (records after the last commit marker) are never deleted: they
// move to <ledger dir>/quarantine/, owner-only, durably, as evidence for whoever investigates.

#include <filesystem>
#include <string_view>

#include "absl/status/statusor.h"

namespace probity::ledger::internal {

// Writes `tail` (the bytes of `segment` from `offset` on) to a new file under quarantine/,
// makes it durable, then cuts the segment at `offset` and makes that durable. `durable` false
// (a ledger opened without fsync, for tests and benchmarks) skips the fsyncs.
absl::StatusOr<std::filesystem::path> QuarantineSegmentTail(const std::filesystem::path& ledger_dir,
                                                            const std::filesystem::path& segment,
                                                            uint64_t offset, std::string_view tail,
                                                            bool durable);

// Moves a whole segment file into quarantine/.
absl::StatusOr<std::filesystem::path> QuarantineWholeSegment(
    const std::filesystem::path& ledger_dir, const std::filesystem::path& segment, bool durable);

}  // namespace probity::ledger::internal
