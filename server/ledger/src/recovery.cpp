#include "recovery.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ledger_scan.h"
#include "posix_file.h"
#include "probity/common/file_read.h"
#include "quarantine.h"
#include "segment_file.h"

namespace probity::ledger::internal {
namespace {

absl::Status Damaged(const std::filesystem::path& dir, std::string_view segment, uint64_t entry,
                     std::string_view what) {
  return absl::DataLossError(
      absl::StrCat("ledger ", dir.string(), " is damaged, refusing to open: ",
                   LedgerProblem{entry, std::string(segment), std::string(what)}.Describe(),
                   " (run `probity ledger verify` for the full picture)"));
}

absl::StatusOr<SegmentContents> ReadHeader(const std::filesystem::path& path,
                                           uint64_t first_index) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError("cannot open", path);
  std::string head(kSegmentHeaderBytes, '\0');
  const ssize_t read = ::pread(fd.get(), head.data(), head.size(), 0);
  if (read < 0) return ErrnoError("cannot read", path);
  head.resize(read);
  return DecodeSegment(head, first_index);
}

// The last commit marker of a decoded segment that verifies with the ledger's key.
struct FoundCommit {
  RecordInfo record;
  Checkpoint checkpoint;
  std::string note;
};

absl::StatusOr<std::optional<FoundCommit>> LastVerifiedCommit(
    const std::filesystem::path& dir, const SegmentName& segment, std::string_view bytes,
    const SegmentContents& contents, const NoteVerifier& verifier, std::string_view origin) {
  absl::Status last_failure;
  for (auto it = contents.records.rbegin(); it != contents.records.rend(); ++it) {
    if (it->type != RecordType::kCommit) continue;
    const std::string_view payload =
        bytes.substr(it->offset + kRecordHeaderBytes, it->end - it->offset - kRecordHeaderBytes);
    auto checkpoint = OpenCommitMarker(payload, &verifier, origin);
    if (!checkpoint.ok()) {
      if (last_failure.ok()) last_failure = checkpoint.status();
      continue;
    }
    // A genuine marker copied to another place (a replay) covers another number of entries.
    if (checkpoint->size != it->entry_index) continue;
    return FoundCommit{*it, *checkpoint, std::string(payload)};
  }
  if (!last_failure.ok()) {
    // Markers are there, yet none is ours: a changed signing key or origin, not a torn write.
    return Damaged(
        dir, segment.path.filename().string(), segment.first_index,
        absl::StrCat("no commit marker verifies with this ledger's key and origin (",
                     last_failure.message(), "); was the signing key or the origin changed?"));
  }
  return std::nullopt;
}

std::string_view PayloadOf(std::string_view bytes, const RecordInfo& record) {
  return bytes.substr(record.offset + kRecordHeaderBytes,
                      record.end - record.offset - kRecordHeaderBytes);
}

}  // namespace

absl::StatusOr<std::vector<uint64_t>> LoadEntryOffsets(const SegmentIndex& segment,
                                                       uint64_t entries) {
  auto contents = ReadSegment(segment.path, segment.first_index);
  if (!contents.ok()) return contents.status();
  std::vector<uint64_t> offsets;
  for (const auto& record : contents->records) {
    if (record.type == RecordType::kEntry && offsets.size() < entries) {
      offsets.push_back(record.offset);
    }
  }
  if (offsets.size() != entries) {
    return absl::DataLossError(absl::StrCat("segment ", segment.path.filename().string(), " holds ",
                                            offsets.size(), " intact entries, not ", entries,
                                            " (run `probity ledger verify`)"));
  }
  return offsets;
}

absl::StatusOr<RecoveredLedger> RecoverLedger(const std::filesystem::path& dir, TreeStore& store,
                                              const NoteVerifier& verifier, std::string_view origin,
                                              bool durable) {
  RecoveredLedger recovered;
  RecoveryReport& report = recovered.report;
  auto listed = ListSegments(dir);
  if (!listed.ok()) return listed.status();
  const std::vector<SegmentName>& segments = *listed;

  // 1. Headers: cheap, and they catch older formats and most missing or renamed segments.
  std::vector<SegmentContents> headers;
  for (const auto& segment : segments) {
    auto header = ReadHeader(segment.path, segment.first_index);
    if (!header.ok()) return header.status();
    if (header->older_format) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ledger ", dir.string(), ": segment ", segment.path.filename().string(),
          " is in format 1 (no commit markers), written by an older Probity; this version "
          "opens format 2 ledgers only"));
    }
    headers.push_back(*std::move(header));
  }

  // 2. The last verified commit marker, from the end. Segments after it hold nothing that was
  // acknowledged: each new segment is created by one write holding its first group commit.
  std::optional<FoundCommit> commit;
  size_t commit_segment = 0;
  std::string commit_bytes;
  SegmentContents commit_contents;
  std::vector<std::pair<size_t, uint64_t>> trailing;  // (segment, whole records)
  std::optional<RecordDamage> tail_damage;
  for (size_t s = segments.size(); s-- > 0;) {
    auto bytes = common::ReadFileToString(segments[s].path);
    if (!bytes.ok()) return bytes.status();
    SegmentContents contents = DecodeSegment(*bytes, segments[s].first_index);
    if (s + 1 == segments.size()) tail_damage = contents.damage;
    auto found = LastVerifiedCommit(dir, segments[s], *bytes, contents, verifier, origin);
    if (!found.ok()) return found.status();
    if (*found) {
      commit = std::move(*found);
      commit_segment = s;
      commit_bytes = *std::move(bytes);
      commit_contents = std::move(contents);
      break;
    }
    trailing.emplace_back(s, contents.records.size());
  }
  std::reverse(trailing.begin(), trailing.end());

  const uint64_t size = commit ? commit->checkpoint.size : 0;
  std::array<uint64_t, TreeStore::kMaxLevels> counts{};
  for (int level = 0; level < TreeStore::kMaxLevels; ++level) {
    auto count = store.StoredCount(level);
    if (!count.ok()) return count.status();
    counts[level] = *count;
    // The tree files are written only after a group commit's flush: never ahead of a marker.
    if (counts[level] > size >> level) {
      if (tail_damage && !segments.empty()) {
        return Damaged(dir, segments.back().path.filename().string(), tail_damage->entry_index,
                       absl::StrCat(tail_damage->what, " at byte ", tail_damage->offset,
                                    " (an acknowledged entry: the stored tree covers ", counts[0],
                                    " entries)"));
      }
      return Damaged(dir, "", size,
                     absl::StrCat("the stored tree covers ", counts[level] << level,
                                  " entries but the last commit marker covers ", size,
                                  " (entries or commit markers were removed)"));
    }
  }

  if (commit) {
    const SegmentName& segment = segments[commit_segment];
    const std::string name = segment.path.filename().string();
    // The chain of segments up to the marker's: each header intact, first at entry 0, each
    // linking to the one before.
    for (size_t s = 0; s <= commit_segment; ++s) {
      const std::string segment_name = segments[s].path.filename().string();
      if (headers[s].damage && s != commit_segment) {
        return Damaged(dir, segment_name, segments[s].first_index, headers[s].damage->what);
      }
      const uint64_t expected_previous = s == 0 ? kNoPreviousSegment : segments[s - 1].first_index;
      if ((s == 0 && segments[s].first_index != 0) ||
          headers[s].header.previous_first_index != expected_previous) {
        return Damaged(dir, segment_name, segments[s].first_index,
                       s == 0 ? "the first segment is missing"
                              : "segment header names another previous segment (a segment is "
                                "missing or was renamed)");
      }
    }

    // 3. The stored tree is durable up to the start of the marker's segment (fsync'd when that
    // segment began) as far as the files reach; re-hash from there.
    uint64_t durable = std::min({size, segment.first_index, counts[0]});
    for (int level = 1; level < TreeStore::kMaxLevels; ++level) {
      if ((durable >> level) > counts[level]) durable = ((counts[level] + 1) << level) - 1;
    }
    auto frontier = MerkleFrontier::FromSubtrees(durable, store.Source(durable));
    if (!frontier.ok()) return frontier.status();
    std::vector<MerkleFrontier::CompletedNode> nodes;
    auto hash_entry = [&](std::string_view payload) {
      auto completed = frontier->Append(HashLeaf(payload));
      nodes.insert(nodes.end(), completed.begin(), completed.end());
    };
    // Segments before the marker's are read only when the tree files fall short of them.
    size_t first_read = commit_segment;
    while (first_read > 0 && segments[first_read].first_index > durable) --first_read;
    for (size_t s = first_read; s < commit_segment; ++s) {
      auto bytes = common::ReadFileToString(segments[s].path);
      if (!bytes.ok()) return bytes.status();
      const SegmentContents contents = DecodeSegment(*bytes, segments[s].first_index);
      const std::string segment_name = segments[s].path.filename().string();
      if (contents.damage) {
        return Damaged(dir, segment_name, contents.damage->entry_index,
                       absl::StrCat(contents.damage->what, " at byte ", contents.damage->offset));
      }
      if (segments[s].first_index + contents.entry_count != segments[s + 1].first_index) {
        return Damaged(dir, segment_name, segments[s].first_index + contents.entry_count,
                       "the segment does not end where the next one begins");
      }
      for (const auto& record : contents.records) {
        if (record.type == RecordType::kEntry && record.entry_index >= durable) {
          hash_entry(PayloadOf(*bytes, record));
        }
      }
    }
    for (const auto& record : commit_contents.records) {
      if (record.offset >= commit->record.offset) break;
      if (record.type == RecordType::kEntry) {
        if (record.entry_index >= durable) hash_entry(PayloadOf(commit_bytes, record));
      }
    }
    report.entries_rehashed = size - durable;
    if (frontier->size() != size || frontier->Root() != commit->checkpoint.root) {
      return Damaged(
          dir, name, durable,
          absl::StrCat("the stored tree and the entries after entry ", durable,
                       " do not give the root signed in the last commit marker (tree size ", size,
                       "); if `probity ledger verify` finds the entries intact, delete the "
                       "tree/ directory and the next open rebuilds it from them"));
    }
    // Rewrite the nodes past the durable extent, counting those the files lacked or had wrong.
    std::array<std::vector<Hash>, TreeStore::kMaxLevels> stored_tail;
    for (int level = 0; level < TreeStore::kMaxLevels; ++level) {
      const uint64_t begin = durable >> level;
      if (counts[level] > begin) {
        auto range = store.ReadRange(level, begin, counts[level] - begin);
        if (!range.ok()) return range.status();
        stored_tail[level] = *std::move(range);
      }
    }
    for (const auto& node : nodes) {
      const auto& tail = stored_tail[node.level];
      const uint64_t at = node.index - (durable >> node.level);
      if (at >= tail.size() || tail[at] != node.hash) ++report.tree_nodes_rewritten;
    }
    if (auto status = store.Write(nodes); !status.ok()) return status;
    if (durable) {
      if (auto status = store.Sync(); !status.ok()) return status;
    }
    if (report.tree_nodes_rewritten > 0) {
      spdlog::warn(
          "ledger {}: rewrote {} stored tree hashes past entry {} that were missing or "
          "torn; they now match the last signed checkpoint",
          dir.string(), report.tree_nodes_rewritten, durable);
    }
    recovered.frontier = *std::move(frontier);
    recovered.checkpoint = commit->note;
  }
  recovered.size = size;

  // The segments that stay, with the active one's entry offsets.
  const size_t kept = commit ? commit_segment + 1 : 0;
  for (size_t s = 0; s < kept; ++s) {
    recovered.segments.push_back({segments[s].path, segments[s].first_index, {}, false});
  }
  if (commit) {
    SegmentIndex& active = recovered.segments.back();
    for (const auto& record : commit_contents.records) {
      if (record.offset >= commit->record.offset) break;
      if (record.type == RecordType::kEntry) active.entry_offsets.push_back(record.offset);
    }
    active.offsets_loaded = true;
    recovered.active_bytes = commit->record.end;
  }

  // 4. Whatever follows the marker goes to quarantine, never into the log.
  uint64_t whole_records = 0;
  if (commit && commit->record.end < commit_bytes.size()) {
    const SegmentName& segment = segments[commit_segment];
    for (const auto& record : commit_contents.records) {
      if (record.offset >= commit->record.end) ++whole_records;
    }
    report.segment = segment.path.filename().string();
    report.bytes_cut += commit_bytes.size() - commit->record.end;
    auto moved =
        QuarantineSegmentTail(dir, segment.path, commit->record.end,
                              std::string_view(commit_bytes).substr(commit->record.end), durable);
    if (!moved.ok()) return moved.status();
    report.quarantined.push_back(*moved);
  }
  for (const auto& [s, records] : trailing) {
    std::error_code error;
    const uint64_t bytes = std::filesystem::file_size(segments[s].path, error);
    if (error) return absl::InternalError(absl::StrCat("cannot stat ", segments[s].path.string()));
    if (report.segment.empty()) report.segment = segments[s].path.filename().string();
    report.bytes_cut += bytes;
    whole_records += records;
    auto moved = QuarantineWholeSegment(dir, segments[s].path, durable);
    if (!moved.ok()) return moved.status();
    report.quarantined.push_back(*moved);
  }
  if (!report.quarantined.empty()) {
    report.tail_cut = true;
    report.entry_index = size;
    report.whole_records_cut = whole_records;
    report.what = absl::StrCat(
        whole_records, " whole record(s) after the last commit marker",
        tail_damage ? absl::StrCat(", ending in a torn or damaged record (", tail_damage->what, ")")
                    : std::string());
    std::vector<std::string> paths;
    for (const auto& path : report.quarantined) paths.push_back(path.string());
    spdlog::error(
        "ledger {}: {} bytes after the last commit marker (from segment {}, entry {}: {}) were "
        "never acknowledged: a group commit torn by a crash, or records added while the server "
        "was stopped. They are NOT part of the log; kept as evidence in {}",
        dir.string(), report.bytes_cut, report.segment, size, report.what,
        absl::StrJoin(paths, ", "));
  }
  return recovered;
}

}  // namespace probity::ledger::internal
