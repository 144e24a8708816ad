#include "probity/ledger/reader.h"

#include "absl/strings/str_cat.h"
#include "probity/common/file_read.h"
#include "probity/ledger/merkle.h"
#include "segment_file.h"
#include "tree_store.h"

namespace probity::ledger {

absl::Status ReadEntries(const std::filesystem::path& dir, uint64_t begin,
                         const EntryVisitor& visit) {
  auto segments = internal::ListSegments(dir);
  if (!segments.ok()) return segments.status();
  uint64_t expected = 0;
  for (size_t s = 0; s < segments->size(); ++s) {
    const auto& segment = (*segments)[s];
    const std::string name = segment.path.filename().string();
    if (segment.first_index != expected) {
      return absl::DataLossError(absl::StrCat("segment ", name, ", entry ", expected,
                                              ": segment starts at entry ", segment.first_index));
    }
    const bool last_segment = s + 1 == segments->size();
    // Segments wholly before `begin` need no reading: the next segment's name says where
    // they end.
    if (!last_segment && (*segments)[s + 1].first_index <= begin) {
      expected = (*segments)[s + 1].first_index;
      continue;
    }
    auto bytes = common::ReadFileToString(segment.path);
    if (!bytes.ok()) return bytes.status();
    const internal::SegmentContents contents = internal::DecodeSegment(*bytes, segment.first_index);
    // Damage at the very end, after the last commit marker, is a torn write, not tampering.
    if (contents.damage && !last_segment) {
      return absl::DataLossError(absl::StrCat(
          "segment ", name, ", entry ", contents.damage->entry_index, ": ", contents.damage->what));
    }
    // In the last segment only entries followed by a commit marker were acknowledged.
    uint64_t end = contents.records.empty() ? 0 : contents.records.back().end;
    if (last_segment) {
      end = 0;
      for (const auto& record : contents.records) {
        if (record.type == internal::RecordType::kCommit) end = record.offset;
      }
    }
    for (const auto& record : contents.records) {
      if (record.offset >= end) break;
      if (record.type != internal::RecordType::kEntry || record.entry_index < begin) continue;
      const std::string_view payload = std::string_view(*bytes).substr(
          record.offset + internal::kRecordHeaderBytes,
          record.end - record.offset - internal::kRecordHeaderBytes);
      absl::StatusOr<bool> go_on = visit(record.entry_index, payload);
      if (!go_on.ok()) return go_on.status();
      if (!*go_on) return absl::OkStatus();
    }
    expected = segment.first_index + contents.entry_count;
  }
  return absl::OkStatus();
}

LedgerReader::~LedgerReader() = default;

absl::StatusOr<std::unique_ptr<LedgerReader>> LedgerReader::Open(const std::filesystem::path& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat(dir.string(), " is not a ledger directory"));
  }
  auto store = internal::TreeStore::Open(dir, /*writable=*/false);
  if (!store.ok()) return store.status();
  std::unique_ptr<LedgerReader> reader(new LedgerReader());
  reader->store_ = std::move(*store);
  auto size = reader->store_->StoredCount(0);
  if (!size.ok()) return size.status();
  reader->size_ = *size;
  return reader;
}

absl::Status LedgerReader::CheckSize(uint64_t size) const {
  if (size > size_) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is beyond the ledger size ", size_));
  }
  return absl::OkStatus();
}

absl::StatusOr<Hash> LedgerReader::LeafHash(uint64_t index) const {
  if (index >= size_) return absl::OutOfRangeError(absl::StrCat("no entry ", index));
  return store_->Get(0, index);
}

absl::StatusOr<Hash> LedgerReader::RootAt(uint64_t size) const {
  if (auto status = CheckSize(size); !status.ok()) return status;
  return probity::ledger::RootAt(size, store_->Source(size));
}

absl::StatusOr<std::vector<Hash>> LedgerReader::InclusionProof(uint64_t index,
                                                               uint64_t size) const {
  if (auto status = CheckSize(size); !status.ok()) return status;
  return probity::ledger::InclusionProof(index, size, store_->Source(size));
}

absl::StatusOr<std::vector<Hash>> LedgerReader::ConsistencyProof(uint64_t old_size,
                                                                 uint64_t new_size) const {
  if (auto status = CheckSize(new_size); !status.ok()) return status;
  return probity::ledger::ConsistencyProof(old_size, new_size, store_->Source(new_size));
}

}  // namespace probity::ledger
