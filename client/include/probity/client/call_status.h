#pragma once

// A failed call as absl::Status: the gRPC code and message, and as payloads what the server
// attached to it, so a caller reads them as data instead of parsing the message: the
// SearchFailure (coverage, ledger entry) of a failed search, and the ledger entry that
// recorded a refusal (the `probity-ledger-index` trailer).

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/v1/search.pb.h"

namespace probity::client {

// OK for an OK call; otherwise the call's code and message with the payloads read below.
absl::Status CallStatus(const grpc::Status& status, const grpc::ClientContext& context);

// The SearchFailure the server attached to a failed search; NOT_FOUND when it attached none
// (a refusal, a deadline, a transport error).
absl::StatusOr<v1::SearchFailure> FailureOf(const absl::Status& status);

// The ledger entry that recorded this failed call, when the server named one.
std::optional<uint64_t> LedgerEntryOf(const absl::Status& status);

}  // namespace probity::client
