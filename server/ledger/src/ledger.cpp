// The writing ledger: segment files + stored tree + group commit.
//
// Durability order per batch: records are written and fsync'd to the segment first, then their
// subtree hashes are written and fsync'd, then the batch is acknowledged. So a stored leaf
// hash always means a durable record, and Open can tell a torn, never-acknowledged tail (cut
// it) from damage to acknowledged entries (refuse to open).

#include "probity/ledger/ledger.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "ledger_scan.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/merkle.h"
#include "segment_file.h"
#include "string_util.h"
#include "tree_store.h"

namespace probity::ledger {
namespace {

using internal::AsAbsl;

using internal::SegmentIndex;
using internal::TreeStore;

absl::Status ErrnoError(std::string_view what, const std::filesystem::path& path) {
  return absl::InternalError(
      absl::StrCat(AsAbsl(what), " ", path.string(), ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, std::string_view bytes, uint64_t offset,
                      const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path);
    }
    bytes.remove_prefix(written);
    offset += written;
  }
  return absl::OkStatus();
}

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~FileDescriptor() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

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
  std::string VerifierKey() const override { return signer_->VerifierKey(); }
  RecoveryReport Recovery() const override { return recovery_; }

 private:
  // What one flushed batch adds to the shared state.
  struct Commit {
    std::vector<std::pair<uint64_t, uint64_t>> records;  // (segment first index, offset)
    std::vector<SegmentIndex> new_segments;
    std::string checkpoint;
  };

  explicit LedgerImpl(Options options) : options_(std::move(options)) {}
  absl::Status Recover(internal::ScanResult scan);
  absl::Status StartSegment(uint64_t first_index);
  absl::StatusOr<Commit> WriteBatch(const std::vector<std::string>& batch, uint64_t first_index);
  absl::Status CheckSize(uint64_t size) const;
  std::string SignCheckpointAt(uint64_t size, const Hash& root) const;

  const Options options_;
  std::unique_ptr<NoteSigner> signer_;
  std::unique_ptr<TreeStore> store_;
  FileDescriptor lock_file_;
  RecoveryReport recovery_;

  // Touched only by the batch leader (one at a time) or during Open.
  FileDescriptor segment_fd_;
  std::filesystem::path segment_path_;
  uint64_t segment_first_index_ = 0;
  uint64_t segment_bytes_ = 0;
  uint64_t segment_records_ = 0;
  MerkleFrontier frontier_;

  mutable std::mutex mutex_;
  std::condition_variable committed_;
  std::deque<std::string> pending_;  // queued entries, in index order
  uint64_t next_index_ = 0;
  uint64_t durable_size_ = 0;
  bool flushing_ = false;
  absl::Status failure_;
  std::vector<SegmentIndex> segments_;
  std::string checkpoint_;
};

absl::StatusOr<std::unique_ptr<Ledger>> LedgerImpl::Create(const Options& options) {
  if (options.origin.empty()) return absl::InvalidArgumentError("ledger: origin is empty");
  std::unique_ptr<LedgerImpl> ledger(new LedgerImpl(options));
  auto signer = NoteSigner::Load(options.signing_key, options.origin);
  if (!signer.ok()) return signer.status();
  ledger->signer_ = std::move(*signer);

  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ledger directory ", options.dir.string(),
                                            ": ", error.message()));
  }
  const auto lock_path = options.dir / "LOCK";
  ledger->lock_file_ =
      FileDescriptor(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (ledger->lock_file_.get() < 0) return ErrnoError("cannot open", lock_path);
  if (::flock(ledger->lock_file_.get(), LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("ledger ", options.dir.string(), " is open in another process"));
  }
  auto store = TreeStore::Open(options.dir, /*writable=*/true);
  if (!store.ok()) return store.status();
  ledger->store_ = std::move(*store);
  auto scan = internal::ScanLedger(options.dir, *ledger->store_);
  if (!scan.ok()) return scan.status();
  if (scan->problem) {
    return absl::DataLossError(
        absl::StrCat("ledger ", options.dir.string(),
                     " is damaged, refusing to open: ", scan->problem->Describe()));
  }
  if (auto status = ledger->Recover(std::move(*scan)); !status.ok()) return status;
  return std::unique_ptr<Ledger>(std::move(ledger));
}

absl::Status LedgerImpl::Recover(internal::ScanResult scan) {
  if (scan.torn_tail) {
    const auto& damage = *scan.torn_tail;
    const auto& path = scan.torn_tail_segment;
    std::error_code error;
    const uint64_t file_size = std::filesystem::file_size(path, error);
    if (error) return absl::InternalError(absl::StrCat("cannot stat ", path.string()));
    recovery_ = RecoveryReport{true, path.filename().string(), damage.entry_index,
                               file_size - damage.offset, damage.what};
    spdlog::warn(
        "ledger {}: cutting a torn record at the tail: segment {}, entry {}, {} bytes "
        "({})",
        options_.dir.string(), recovery_.segment, damage.entry_index, recovery_.bytes_cut,
        damage.what);
    if (damage.offset < internal::kSegmentHeaderBytes) {
      std::filesystem::remove(path, error);
      if (error) return absl::InternalError(absl::StrCat("cannot remove ", path.string()));
      scan.segments.pop_back();
      if (auto status = internal::SyncDirectory(options_.dir); !status.ok()) return status;
    } else {
      std::filesystem::resize_file(path, damage.offset, error);
      if (error) return absl::InternalError(absl::StrCat("cannot cut ", path.string()));
      FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (fd.get() < 0 || ::fsync(fd.get()) != 0) return ErrnoError("cannot fsync", path);
    }
  }
  // Hashes of intact entries that were written but not yet hashed into the store before a crash.
  const auto unhashed_entries =
      std::count_if(scan.unstored_nodes.begin(), scan.unstored_nodes.end(),
                    [](const auto& node) { return node.level == 0; });
  if (unhashed_entries > 0) {
    spdlog::warn(
        "ledger {}: hashing {} intact entries written but never acknowledged before a "
        "crash",
        options_.dir.string(), unhashed_entries);
  }
  if (auto status = store_->Write(scan.unstored_nodes); !status.ok()) return status;
  if (auto status = store_->Sync(); !status.ok()) return status;

  frontier_ = scan.frontier;
  durable_size_ = next_index_ = scan.entry_count;
  segments_ = std::move(scan.segments);
  if (segments_.empty()) {
    if (auto status = StartSegment(durable_size_); !status.ok()) return status;
    segments_.push_back({segment_path_, durable_size_, {}});
  } else {
    const SegmentIndex& last = segments_.back();
    segment_path_ = last.path;
    segment_first_index_ = last.first_index;
    segment_records_ = last.record_offsets.size();
    std::error_code error;
    segment_bytes_ = std::filesystem::file_size(last.path, error);
    if (error) return absl::InternalError(absl::StrCat("cannot stat ", last.path.string()));
    segment_fd_ = FileDescriptor(::open(last.path.c_str(), O_WRONLY | O_CLOEXEC));
    if (segment_fd_.get() < 0) return ErrnoError("cannot open", last.path);
  }
  checkpoint_ = SignCheckpointAt(durable_size_, frontier_.Root());
  return absl::OkStatus();
}

absl::Status LedgerImpl::StartSegment(uint64_t first_index) {
  const auto path = options_.dir / internal::SegmentFileName(first_index);
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoError("cannot create segment", path);
  const std::string header = internal::EncodeSegmentHeader(first_index);
  if (auto status = WriteAll(fd.get(), header, 0, path); !status.ok()) return status;
  if (options_.fsync) {
    if (::fdatasync(fd.get()) != 0) return ErrnoError("cannot fsync", path);
    if (auto status = internal::SyncDirectory(options_.dir); !status.ok()) return status;
  }
  segment_fd_ = std::move(fd);
  segment_path_ = path;
  segment_first_index_ = first_index;
  segment_bytes_ = header.size();
  segment_records_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<LedgerImpl::Commit> LedgerImpl::WriteBatch(const std::vector<std::string>& batch,
                                                          uint64_t first_index) {
  Commit commit;
  std::string buffer;
  uint64_t buffer_offset = segment_bytes_;
  auto flush_buffer = [&]() -> absl::Status {
    if (auto status = WriteAll(segment_fd_.get(), buffer, buffer_offset, segment_path_);
        !status.ok())
      return status;
    if (options_.fsync && ::fdatasync(segment_fd_.get()) != 0) {
      return ErrnoError("cannot fsync", segment_path_);
    }
    buffer.clear();
    return absl::OkStatus();
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::string record = internal::EncodeRecord(batch[i]);
    if (segment_records_ > 0 && segment_bytes_ + record.size() > options_.max_segment_bytes) {
      if (auto status = flush_buffer(); !status.ok()) return status;
      if (auto status = StartSegment(first_index + i); !status.ok()) return status;
      commit.new_segments.push_back({segment_path_, segment_first_index_, {}});
      buffer_offset = segment_bytes_;
    }
    commit.records.emplace_back(segment_first_index_, segment_bytes_);
    buffer += record;
    segment_bytes_ += record.size();
    ++segment_records_;
  }
  if (auto status = flush_buffer(); !status.ok()) return status;

  std::vector<MerkleFrontier::CompletedNode> nodes;
  for (const auto& payload : batch) {
    auto completed = frontier_.Append(HashLeaf(payload));
    nodes.insert(nodes.end(), completed.begin(), completed.end());
  }
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const auto& a, const auto& b) { return a.level < b.level; });
  if (auto status = store_->Write(nodes); !status.ok()) return status;
  if (options_.fsync) {
    if (auto status = store_->Sync(); !status.ok()) return status;
  }
  commit.checkpoint = SignCheckpointAt(frontier_.size(), frontier_.Root());
  return commit;
}

absl::StatusOr<Receipt> LedgerImpl::Append(const v1::LedgerEntry& entry) {
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
  pending_.push_back(std::move(bytes));
  while (durable_size_ <= index && failure_.ok()) {
    if (flushing_) {
      committed_.wait(lock);
      continue;
    }
    // Leader: everything queued so far goes to disk under one fsync.
    flushing_ = true;
    std::vector<std::string> batch;
    if (options_.group_commit) {
      batch.assign(std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.end()));
      pending_.clear();
    } else {
      batch.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    const uint64_t first_index = durable_size_;
    lock.unlock();
    auto commit = WriteBatch(batch, first_index);
    lock.lock();
    flushing_ = false;
    if (!commit.ok()) {
      // Fail closed: the files may hold a partial batch, which only Open can sort out.
      failure_ = absl::UnavailableError(
          absl::StrCat("ledger write failed, no further appends: ", commit.status().message()));
      spdlog::error("{}", std::string(failure_.message()));
      committed_.notify_all();
      break;
    }
    for (auto& segment : commit->new_segments) segments_.push_back(std::move(segment));
    for (const auto& [segment_first, offset] : commit->records) {
      auto it = std::find_if(segments_.rbegin(), segments_.rend(),
                             [&](const auto& s) { return s.first_index == segment_first; });
      it->record_offsets.push_back(offset);
    }
    durable_size_ = first_index + batch.size();
    checkpoint_ = std::move(commit->checkpoint);
    committed_.notify_all();
  }
  if (durable_size_ > index) return Receipt{index, checkpoint_};
  return failure_;
}

absl::StatusOr<std::string> LedgerImpl::ReadEntry(uint64_t index) const {
  std::filesystem::path path;
  uint64_t offset = 0;
  {
    std::lock_guard lock(mutex_);
    if (index >= durable_size_) {
      return absl::OutOfRangeError(
          absl::StrCat("entry ", index, " is beyond the ledger size ", durable_size_));
    }
    auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                               [](uint64_t i, const auto& s) { return i < s.first_index; });
    --it;
    path = it->path;
    offset = it->record_offsets[index - it->first_index];
  }
  return internal::ReadRecordAt(path, offset);
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

std::string LedgerImpl::SignCheckpointAt(uint64_t size, const Hash& root) const {
  return signer_->Sign(FormatCheckpoint(Checkpoint{options_.origin, size, root, {}}));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const Options& options) {
  return LedgerImpl::Create(options);
}

}  // namespace probity::ledger
