#pragma once

// A Ledger that passes every call to another ledger: the base of wrappers that change or watch
// one call and leave the rest as they are (appends that fail on cue in tests, appends counted
// in benchmarks), so that no wrapper forgets a call (StoredBytes, say) and answers for the
// real ledger wrongly.

#include <memory>
#include <utility>

#include "probity/ledger/ledger.h"

namespace probity::ledger {

class ForwardingLedger : public Ledger {
 public:
  explicit ForwardingLedger(std::unique_ptr<Ledger> inner) : inner_(std::move(inner)) {}

  absl::StatusOr<Receipt> Append(const v1::LedgerEntry& entry) override {
    return inner_->Append(entry);
  }
  uint64_t Size() const override { return inner_->Size(); }
  absl::StatusOr<std::string> ReadEntry(uint64_t index) const override {
    return inner_->ReadEntry(index);
  }
  absl::StatusOr<Hash> RootAt(uint64_t size) const override { return inner_->RootAt(size); }
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const override {
    return inner_->InclusionProof(index, size);
  }
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                     uint64_t new_size) const override {
    return inner_->ConsistencyProof(old_size, new_size);
  }
  absl::StatusOr<std::string> SignedCheckpoint() const override {
    return inner_->SignedCheckpoint();
  }
  std::string VerifierKey() const override { return inner_->VerifierKey(); }
  RecoveryReport Recovery() const override { return inner_->Recovery(); }
  uint64_t StoredBytes() const override { return inner_->StoredBytes(); }

 protected:
  Ledger& inner() const { return *inner_; }

 private:
  std::unique_ptr<Ledger> inner_;
};

}  // namespace probity::ledger
