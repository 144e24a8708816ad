#pragma once

// A ledger whose appends can be made to fail, standing in for a full or read-only disk: wraps
// a real ledger and fails every append once `fail` is set, or once `appends_left` (when not
// negative) has run out.

#include <atomic>
#include <memory>

#include "probity/ledger/forwarding_ledger.h"

namespace probity::service::testing {

class FailingLedger : public ledger::ForwardingLedger {
 public:
  using ForwardingLedger::ForwardingLedger;
  std::atomic<bool> fail{false};
  std::atomic<int> appends_left{-1};  // negative: no limit

  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry) override {
    if (fail) return absl::UnavailableError("No space left on device (injected)");
    if (appends_left.load() >= 0 && appends_left.fetch_sub(1) <= 0) {
      fail = true;
      return absl::UnavailableError("No space left on device (injected)");
    }
    return inner().Append(entry);
  }

  v1::LedgerEntry Entry(uint64_t index) const {
    v1::LedgerEntry entry;
    auto bytes = ReadEntry(index);
    if (bytes.ok()) entry.ParseFromString(*bytes);
    return entry;
  }
};

}  // namespace probity::service::testing
