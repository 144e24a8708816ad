#pragma once

// A ledger whose appends can be made to fail, standing in for a full or read-only disk: wraps
// a real ledger and fails every append once `fail` is set, or once `appends_left` (when not
// negative) has run out.

#include <atomic>
#include <memory>

#include "probity/ledger/ledger.h"

namespace probity::service::testing {

class FailingLedger : public ledger::Ledger {
 public:
  explicit FailingLedger(std::unique_ptr<ledger::Ledger> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> fail{false};
  std::atomic<int> appends_left{-1};  // negative: no limit

  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry) override {
    if (fail) return absl::UnavailableError("No space left on device (injected)");
    if (appends_left.load() >= 0 && appends_left.fetch_sub(1) <= 0) {
      fail = true;
      return absl::UnavailableError("No space left on device (injected)");
    }
    return inner_->Append(entry);
  }
  uint64_t Size() const override { return inner_->Size(); }
  absl::StatusOr<std::string> ReadEntry(uint64_t index) const override {
    return inner_->ReadEntry(index);
  }
  absl::StatusOr<ledger::Hash> RootAt(uint64_t size) const override { return inner_->RootAt(size); }
  absl::StatusOr<std::vector<ledger::Hash>> InclusionProof(uint64_t index,
                                                           uint64_t size) const override {
    return inner_->InclusionProof(index, size);
  }
  absl::StatusOr<std::vector<ledger::Hash>> ConsistencyProof(uint64_t old_size,
                                                             uint64_t new_size) const override {
    return inner_->ConsistencyProof(old_size, new_size);
  }
  absl::StatusOr<std::string> SignedCheckpoint() const override {
    return inner_->SignedCheckpoint();
  }
  std::string VerifierKey() const override { return inner_->VerifierKey(); }
  ledger::RecoveryReport Recovery() const override { return inner_->Recovery(); }

  v1::LedgerEntry Entry(uint64_t index) const {
    v1::LedgerEntry entry;
    auto bytes = ReadEntry(index);
    if (bytes.ok()) entry.ParseFromString(*bytes);
    return entry;
  }

 private:
  std::unique_ptr<ledger::Ledger> inner_;
};

}  // namespace probity::service::testing
