#include "probity/client/call_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace probity::client {
namespace {

// The Any type URL the server packs the SearchFailure under, reused as the payload's URL.
constexpr absl::string_view kSearchFailurePayload = "type.googleapis.com/probity.v1.SearchFailure";
constexpr absl::string_view kLedgerEntryPayload = "probity-ledger-index";

}  // namespace

absl::Status CallStatus(const grpc::Status& status, const grpc::ClientContext& context) {
  if (status.ok()) return absl::OkStatus();
  // gRPC's codes and Abseil's are the same numbers (both are google.rpc.Code).
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  // The details are a SearchStatus (wire-identical to google.rpc.Status); anything else there,
  // or an unparsable trailer, is left out rather than failing the call a second time.
  if (v1::SearchStatus details;
      !status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& detail : details.details()) {
      v1::SearchFailure failure;
      if (detail.Is<v1::SearchFailure>() && detail.UnpackTo(&failure)) {
        result.SetPayload(kSearchFailurePayload, absl::Cord(failure.SerializeAsString()));
        break;
      }
    }
  }
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(std::string(kLedgerEntryPayload)); it != trailers.end()) {
    if (uint64_t index = 0;
        absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &index)) {
      result.SetPayload(kLedgerEntryPayload, absl::Cord(std::to_string(index)));
    }
  }
  return result;
}

absl::StatusOr<v1::SearchFailure> FailureOf(const absl::Status& status) {
  const absl::optional<absl::Cord> payload = status.GetPayload(kSearchFailurePayload);
  v1::SearchFailure failure;
  if (!payload || !failure.ParseFromString(std::string(*payload))) {
    return absl::NotFoundError("the server attached no SearchFailure to this status");
  }
  return failure;
}

std::optional<uint64_t> LedgerEntryOf(const absl::Status& status) {
  const absl::optional<absl::Cord> payload = status.GetPayload(kLedgerEntryPayload);
  uint64_t index = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &index)) return std::nullopt;
  return index;
}

}  // namespace probity::client
