#pragma once

// An in-memory stand-in for the ledger: keeps entry bytes, no Merkle tree (tests of the
// service's own logic do not look at proofs).

#include <mutex>
#include <vector>

#include "probity/ledger/ledger.h"

namespace probity::service::testing {

class FakeLedger : public ledger::Ledger {
 public:
  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry) override {
    std::lock_guard lock(mutex_);
    entries_.push_back(entry.SerializeAsString());
    return ledger::Receipt{entries_.size() - 1, "checkpoint"};
  }
  uint64_t Size() const override {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  absl::StatusOr<std::string> ReadEntry(uint64_t index) const override {
    std::lock_guard lock(mutex_);
    if (index >= entries_.size()) return absl::OutOfRangeError("no such entry");
    return entries_[index];
  }
  absl::StatusOr<ledger::Hash> RootAt(uint64_t) const override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::vector<ledger::Hash>> InclusionProof(uint64_t, uint64_t) const override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::vector<ledger::Hash>> ConsistencyProof(uint64_t, uint64_t) const override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::string> SignedCheckpoint() const override { return "checkpoint"; }
  std::string VerifierKey() const override { return "fake"; }
  ledger::RecoveryReport Recovery() const override { return {}; }

  v1::LedgerEntry Entry(uint64_t index) const {
    v1::LedgerEntry entry;
    entry.ParseFromString(*ReadEntry(index));
    return entry;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> entries_;
};

}  // namespace probity::service::testing
