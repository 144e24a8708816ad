#pragma once

// What the ledger tells a monitoring system about its group commits. The ledger library knows
// nothing of any metrics system: the caller passes an observer in Options, and the service
// exports what it hears (server/service's metrics).

#include <cstdint>

#include "absl/time/time.h"

namespace probity::ledger {

// One durable group commit.
struct GroupCommitStats {
  uint64_t entries = 0;  // appends made durable together
  // Bytes written: the entry records, the commit marker, and a new segment's header.
  uint64_t bytes = 0;
  // Time spent making it durable: the fdatasync of the segment (and, when a new segment
  // starts, of the tree files and the directory). Zero when Options::fsync is false.
  absl::Duration sync_time;
};

// Called by the ledger on the thread of the append that leads a group commit, after the
// commit is durable and before its appends are acknowledged, so it must be cheap and must not
// call back into the ledger. Never called with the ledger's lock held.
class CommitObserver {
 public:
  virtual ~CommitObserver() = default;
  virtual void OnGroupCommit(const GroupCommitStats& stats) = 0;
  // An Append that returned an error (a failed write, a ledger failed closed, an entry that
  // cannot be stored): the entry is not in the log.
  virtual void OnAppendFailed() = 0;
};

}  // namespace probity::ledger
