// The writing ledger: segment files + stored tree + group commit.
//
// One group commit = one write of its entry records followed by a commit marker (the signed
// checkpoint of the tree after them), then one fdatasync; only then are its appends
// acknowledged, and only then are its subtree hashes written to the tree files (without an
// fsync of their own: Open rebuilds a torn tree tail from the records, recovery.h). So every
// acknowledged entry is covered by a durable, signed marker, and Open can tell what the server
// acknowledged from anything added behind its back.

#include "probity/ledger/ledger.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "owner_only.h"
#include "posix_file.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/merkle.h"
#include "recovery.h"
#include "segment_file.h"
#include "tree_store.h"

namespace probity::ledger {
namespace {

using internal::FileDescriptor;
using internal::SegmentIndex;
using internal::TreeStore;

class LedgerImpl final : public Ledger {
 public:
  static absl::StatusOr<std::unique_ptr<Ledger>> Create(const Options& options);

  absl::StatusOr<Receipt> Append(const v1::LedgerEntry& entry) override;
  uint64_t Size() const override {
    std::lock_guard lock(mutex_);
    return durable_size_;
  }
  absl::StatusOr<std::string> ReadEntry(uint64_t index) const override;
  absl::StatusOr<Hash> RootAt(uint64_t size) const override;
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const override;
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                     uint64_t new_size) const override;
  absl::StatusOr<std::string> SignedCheckpoint() const override {
    std::lock_guard lock(mutex_);
    return checkpoint_;
  }
  std::string VerifierKey() const override { return verifier_key_; }
  RecoveryReport Recovery() const override { return recovery_; }
  uint64_t StoredBytes() const override {
    std::lock_guard lock(mutex_);
    return stored_bytes_;
  }

 private:
  // What one flushed group commit adds to the shared state.
  struct Commit {
    std::vector<uint64_t> entry_offsets;  // in the active segment
    std::optional<SegmentIndex> new_segment;
    std::string checkpoint;
    GroupCommitStats stats;
  };

  explicit LedgerImpl(Options options) : options_(std::move(options)) {}
  absl::StatusOr<Receipt> AppendDurably(const v1::LedgerEntry& entry);
  absl::StatusOr<Commit> WriteGroupCommit(const std::vector<std::string>& batch,
                                          uint64_t first_index);
  absl::Status CheckSize(uint64_t size) const;
  absl::StatusOr<std::string> SignCheckpointAt(uint64_t size, const Hash& root) const;

  const Options options_;
  std::shared_ptr<const NoteSigner> signer_;
  std::string verifier_key_;  // signer_'s, formatted once: every search's receipt carries it
  std::unique_ptr<TreeStore> store_;
  FileDescriptor lock_file_;
  RecoveryReport recovery_;

  // Touched only by the group commit leader (one at a time) or during Open.
  FileDescriptor segment_fd_;  // the active segment; none before the first append
  std::filesystem::path segment_path_;
  uint64_t segment_first_index_ = 0;
  uint64_t segment_bytes_ = 0;
  MerkleFrontier frontier_;

  // The entries of one group commit and, once it is written, its outcome. Its appenders wait on
  // `state` (std::atomic::wait: a futex of the group's own) and, once woken, read the outcome
  // without taking mutex_ again. With a condition variable under mutex_, every woken appender
  // of a large group queued on mutex_ in turn on its way out, and that convoy cost more than the
  // commit itself (bench/RESULTS.md, "Ledger": steady appends).
  struct Group {
    // kQueued until written (or until called to lead: kLeadIt, then kLeading once one of its
    // appenders took the lead), then kDone.
    enum State : uint32_t { kQueued, kLeadIt, kLeading, kDone };
    std::vector<std::string> payloads;  // under mutex_, until its leader takes them
    uint64_t first_index = 0;
    absl::Status status;     // written before state becomes kDone, read only after
    std::string checkpoint;  // the signed checkpoint of its commit: idem
    std::atomic<uint32_t> state{kQueued};
  };
  void LeadGroupCommit(const std::shared_ptr<Group>& group);

  mutable std::mutex mutex_;
  // Groups not yet taken by a leader, in index order. With group commit, appends join the last
  // one until its leader takes it; without, each append queues a group of its own.
  std::deque<std::shared_ptr<Group>> queued_;
  // A group commit is being written, or its leader has just called the next group's: appends
  // then queue and wait instead of writing themselves.
  bool flushing_ = false;
  uint64_t next_index_ = 0;
  uint64_t durable_size_ = 0;
  uint64_t stored_bytes_ = 0;  // of the segment files, up to the last durable commit
  absl::Status failure_;
  mutable std::vector<SegmentIndex> segments_;  // entry offsets of old segments load lazily
  std::string checkpoint_;
};

absl::StatusOr<std::unique_ptr<Ledger>> LedgerImpl::Create(const Options& options) {
  if (options.origin.empty()) return absl::InvalidArgumentError("ledger: origin is empty");
  std::unique_ptr<LedgerImpl> ledger(new LedgerImpl(options));
  if (options.signer != nullptr) {
    ledger->signer_ = options.signer;
  } else {
    auto signer = NoteSigner::Load(options.signing_key, options.origin);
    if (!signer.ok()) return signer.status();
    ledger->signer_ = std::move(*signer);
  }
  ledger->verifier_key_ = ledger->signer_->VerifierKey();
  auto verifier = NoteVerifier::FromVerifierKey(ledger->verifier_key_);
  if (!verifier.ok()) return verifier.status();
  if (verifier->name() != options.origin) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger: the signer's key name '", verifier->name(), "' is not the origin"));
  }

  if (auto status = internal::CreateOwnerOnlyDirectory(options.dir); !status.ok()) return status;
  if (auto status = internal::CheckOwnerOnly(options.dir); !status.ok()) return status;
  const auto lock_path = options.dir / "LOCK";
  auto lock_file = internal::OpenOwnerOnlyFile(lock_path, O_RDWR);
  if (!lock_file.ok()) return lock_file.status();
  ledger->lock_file_ = std::move(*lock_file);
  if (::flock(ledger->lock_file_.get(), LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("ledger ", options.dir.string(), " is open in another process"));
  }
  auto store = TreeStore::Open(options.dir, /*writable=*/true);
  if (!store.ok()) return store.status();
  ledger->store_ = std::move(*store);

  auto recovered = internal::RecoverLedger(options.dir, *ledger->store_, *verifier, options.origin,
                                           options.fsync);
  if (!recovered.ok()) return recovered.status();
  ledger->recovery_ = std::move(recovered->report);
  ledger->frontier_ = std::move(recovered->frontier);
  ledger->durable_size_ = ledger->next_index_ = recovered->size;
  ledger->segments_ = std::move(recovered->segments);
  if (recovered->checkpoint.empty()) {
    auto empty_tree = ledger->SignCheckpointAt(0, EmptyTreeRoot());
    if (!empty_tree.ok()) return empty_tree.status();
    ledger->checkpoint_ = *std::move(empty_tree);
  } else {
    ledger->checkpoint_ = std::move(recovered->checkpoint);
  }
  if (!ledger->segments_.empty()) {
    const SegmentIndex& active = ledger->segments_.back();
    ledger->segment_path_ = active.path;
    ledger->segment_first_index_ = active.first_index;
    ledger->segment_bytes_ = recovered->active_bytes;
    ledger->stored_bytes_ = recovered->active_bytes;
    for (size_t i = 0; i + 1 < ledger->segments_.size(); ++i) {
      std::error_code error;
      const uintmax_t bytes = std::filesystem::file_size(ledger->segments_[i].path, error);
      if (error) {
        return absl::InternalError(absl::StrCat("cannot stat ", ledger->segments_[i].path.string(),
                                                ": ", error.message()));
      }
      ledger->stored_bytes_ += bytes;
    }
    ledger->segment_fd_ = FileDescriptor(::open(active.path.c_str(), O_WRONLY | O_CLOEXEC));
    if (ledger->segment_fd_.get() < 0) return internal::ErrnoError("cannot open", active.path);
  }
  return std::unique_ptr<Ledger>(std::move(ledger));
}

absl::StatusOr<LedgerImpl::Commit> LedgerImpl::WriteGroupCommit(
    const std::vector<std::string>& batch, uint64_t first_index) {
  std::vector<MerkleFrontier::CompletedNode> nodes;
  for (const auto& payload : batch) {
    auto completed = frontier_.Append(HashLeaf(payload));
    nodes.insert(nodes.end(), completed.begin(), completed.end());
  }
  // Nothing is written without its commit marker: a failed signature fails the group commit
  // (and so the ledger, closed) before a byte reaches the segment.
  auto checkpoint = SignCheckpointAt(frontier_.size(), frontier_.Root());
  if (!checkpoint.ok()) return checkpoint.status();
  Commit commit;
  commit.checkpoint = *std::move(checkpoint);

  size_t bytes = internal::kRecordHeaderBytes + commit.checkpoint.size();
  for (const auto& payload : batch) bytes += internal::kRecordHeaderBytes + payload.size();
  const bool new_segment =
      segment_fd_.get() < 0 || (segment_bytes_ > internal::kSegmentHeaderBytes &&
                                segment_bytes_ + bytes > options_.max_segment_bytes);
  std::string buffer;
  buffer.reserve(bytes + internal::kSegmentHeaderBytes);
  if (new_segment) {
    buffer = internal::EncodeSegmentHeader(
        first_index, segment_fd_.get() < 0 ? internal::kNoPreviousSegment : segment_first_index_);
  }
  const uint64_t base = new_segment ? 0 : segment_bytes_;
  for (const auto& payload : batch) {
    commit.entry_offsets.push_back(base + buffer.size());
    buffer += internal::EncodeRecord(internal::RecordType::kEntry, payload);
  }
  buffer += internal::EncodeRecord(internal::RecordType::kCommit, commit.checkpoint);

  commit.stats.entries = batch.size();
  commit.stats.bytes = buffer.size();
  const auto timed_sync = [&commit](auto&& sync) {
    const absl::Time start = absl::Now();
    auto result = sync();
    commit.stats.sync_time += absl::Now() - start;
    return result;
  };
  if (new_segment) {
    // The tree of every segment but the active one is durable: Open re-hashes only the last.
    if (segment_fd_.get() >= 0 && options_.fsync) {
      if (auto status = timed_sync([&] { return store_->Sync(); }); !status.ok()) return status;
    }
    const auto path = options_.dir / internal::SegmentFileName(first_index);
    auto fd = internal::OpenOwnerOnlyFile(path, O_WRONLY | O_EXCL);
    if (!fd.ok()) return fd.status();
    if (auto status = internal::WriteAll(fd->get(), buffer, 0, path); !status.ok()) return status;
    if (options_.fsync) {
      if (timed_sync([&] { return ::fdatasync(fd->get()); }) != 0) {
        return internal::ErrnoError("cannot fsync", path);
      }
      if (auto status = timed_sync([&] { return internal::SyncDirectory(options_.dir); });
          !status.ok()) {
        return status;
      }
    }
    segment_fd_ = *std::move(fd);
    segment_path_ = path;
    segment_first_index_ = first_index;
    segment_bytes_ = buffer.size();
    commit.new_segment = SegmentIndex{path, first_index, {}, true};
  } else {
    if (auto status = internal::WriteAll(segment_fd_.get(), buffer, segment_bytes_, segment_path_);
        !status.ok()) {
      return status;
    }
    if (options_.fsync && timed_sync([&] { return ::fdatasync(segment_fd_.get()); }) != 0) {
      return internal::ErrnoError("cannot fsync", segment_path_);
    }
    segment_bytes_ += buffer.size();
  }
  // Durable and signed: now the cache of subtree hashes (rebuilt by Open if torn).
  if (auto status = store_->Write(nodes); !status.ok()) return status;
  return commit;
}

absl::StatusOr<Receipt> LedgerImpl::Append(const v1::LedgerEntry& entry) {
  auto receipt = AppendDurably(entry);
  if (!receipt.ok() && options_.observer != nullptr) options_.observer->OnAppendFailed();
  return receipt;
}

absl::StatusOr<Receipt> LedgerImpl::AppendDurably(const v1::LedgerEntry& entry) {
  std::string bytes;
  if (!entry.SerializeToString(&bytes)) {
    return absl::InvalidArgumentError("ledger entry cannot be serialized");
  }
  if (bytes.size() > internal::kMaxRecordBytes) {
    return absl::InvalidArgumentError("ledger entry is larger than a record may be");
  }
  std::unique_lock lock(mutex_);
  if (!failure_.ok()) return failure_;
  const uint64_t index = next_index_++;
  if (queued_.empty() || !options_.group_commit) {
    queued_.push_back(std::make_shared<Group>());
    queued_.back()->first_index = index;
  }
  const std::shared_ptr<Group> group = queued_.back();
  group->payloads.push_back(std::move(bytes));
  if (!flushing_) {
    // Nothing is being written, so this group is the only one queued: lead it now.
    flushing_ = true;
    lock.unlock();
    LeadGroupCommit(group);
  } else {
    lock.unlock();
    for (uint32_t state = group->state.load(std::memory_order_acquire); state != Group::kDone;
         state = group->state.load(std::memory_order_acquire)) {
      if (state == Group::kLeadIt &&
          group->state.compare_exchange_strong(state, Group::kLeading, std::memory_order_acquire)) {
        LeadGroupCommit(group);
        break;
      }
      group->state.wait(state, std::memory_order_acquire);
    }
  }
  if (!group->status.ok()) return group->status;
  return Receipt{index, group->checkpoint};
}

// Writes `group` (the first queued) as one group commit: one write and one fdatasync. Then
// calls one appender of the next queued group, if any, to lead it, and wakes its own appenders.
void LedgerImpl::LeadGroupCommit(const std::shared_ptr<Group>& group) {
  std::unique_lock lock(mutex_);
  queued_.pop_front();  // `group`: groups are led in order, one at a time
  const std::vector<std::string> batch = std::move(group->payloads);
  const uint64_t first_index = group->first_index;
  lock.unlock();
  auto commit = WriteGroupCommit(batch, first_index);
  if (commit.ok() && options_.observer != nullptr) options_.observer->OnGroupCommit(commit->stats);
  lock.lock();
  std::shared_ptr<Group> next;
  std::deque<std::shared_ptr<Group>> failed;
  if (commit.ok()) {
    if (commit->new_segment) segments_.push_back(*std::move(commit->new_segment));
    auto& offsets = segments_.back().entry_offsets;
    offsets.insert(offsets.end(), commit->entry_offsets.begin(), commit->entry_offsets.end());
    durable_size_ = first_index + batch.size();
    stored_bytes_ += commit->stats.bytes;
    checkpoint_ = commit->checkpoint;
    group->checkpoint = std::move(commit->checkpoint);
    if (queued_.empty()) {
      flushing_ = false;
    } else {
      next = queued_.front();  // flushing_ stays set: its leader is called below
    }
  } else {
    // Fail closed: the files may hold a partial group commit, which only Open can sort out.
    failure_ = absl::UnavailableError(
        absl::StrCat("ledger write failed, no further appends: ", commit.status().message()));
    spdlog::error("{}", std::string(failure_.message()));
    group->status = failure_;
    for (const auto& queued : queued_) queued->status = failure_;
    failed.swap(queued_);
    flushing_ = false;
  }
  lock.unlock();
  // The next commit's leader first: the ledger is idle until it starts.
  if (next != nullptr) {
    next->state.store(Group::kLeadIt, std::memory_order_release);
    next->state.notify_one();
  }
  failed.push_front(group);
  for (const auto& done : failed) {
    done->state.store(Group::kDone, std::memory_order_release);
    done->state.notify_all();
  }
}

absl::StatusOr<std::string> LedgerImpl::ReadEntry(uint64_t index) const {
  std::filesystem::path path;
  uint64_t offset = 0;
  SegmentIndex to_load;
  uint64_t entries = 0;
  {
    std::lock_guard lock(mutex_);
    if (index >= durable_size_) {
      return absl::OutOfRangeError(
          absl::StrCat("entry ", index, " is beyond the ledger size ", durable_size_));
    }
    auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                               [](uint64_t i, const auto& s) { return i < s.first_index; });
    --it;
    if (it->offsets_loaded) {
      path = it->path;
      offset = it->entry_offsets[index - it->first_index];
    } else {
      // Not the active segment, so it is immutable: read its offsets outside the lock.
      to_load = *it;
      entries = std::next(it)->first_index - it->first_index;
    }
  }
  if (path.empty()) {
    auto offsets = internal::LoadEntryOffsets(to_load, entries);
    if (!offsets.ok()) return offsets.status();
    path = to_load.path;
    offset = (*offsets)[index - to_load.first_index];
    std::lock_guard lock(mutex_);
    auto it = std::find_if(segments_.begin(), segments_.end(),
                           [&](const auto& s) { return s.first_index == to_load.first_index; });
    if (it != segments_.end() && !it->offsets_loaded) {
      it->entry_offsets = *std::move(offsets);
      it->offsets_loaded = true;
    }
  }
  return internal::ReadEntryRecordAt(path, offset);
}

absl::Status LedgerImpl::CheckSize(uint64_t size) const {
  std::lock_guard lock(mutex_);
  if (size > durable_size_) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is beyond the ledger size ", durable_size_));
  }
  return absl::OkStatus();
}

absl::StatusOr<Hash> LedgerImpl::RootAt(uint64_t size) const {
  if (auto status = CheckSize(size); !status.ok()) return status;
  return probity::ledger::RootAt(size, store_->Source(size));
}

absl::StatusOr<std::vector<Hash>> LedgerImpl::InclusionProof(uint64_t index, uint64_t size) const {
  if (auto status = CheckSize(size); !status.ok()) return status;
  return probity::ledger::InclusionProof(index, size, store_->Source(size));
}

absl::StatusOr<std::vector<Hash>> LedgerImpl::ConsistencyProof(uint64_t old_size,
                                                               uint64_t new_size) const {
  if (auto status = CheckSize(new_size); !status.ok()) return status;
  return probity::ledger::ConsistencyProof(old_size, new_size, store_->Source(new_size));
}

absl::StatusOr<std::string> LedgerImpl::SignCheckpointAt(uint64_t size, const Hash& root) const {
  return signer_->Sign(FormatCheckpoint(Checkpoint{options_.origin, size, root, {}}));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const Options& options) {
  return LedgerImpl::Create(options);
}

}  // namespace probity::ledger
