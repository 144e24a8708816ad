#include "probity/service/warranted_call.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "probity/common/sha256.h"
#include "probity/service/auth.h"
#include "probity/service/search_entry.h"
#include "probity/service/search_service.h"

namespace probity::service {

CallRefusal RefusalOf(const warrant::Refusal& refusal) {
  return {refusal.IsAuthentication() ? grpc::StatusCode::UNAUTHENTICATED
                                     : grpc::StatusCode::PERMISSION_DENIED,
          std::string(warrant::RefusalCodeName(refusal.code)), refusal.message};
}

std::variant<warrant::VerifiedWarrant, CallRefusal> VerifyCallWarrant(
    const warrant::Verifier& verifier, const grpc::ServerContext& context, v1::LedgerEntry& entry,
    RefusalSource& source) {
  const std::optional<std::string> token = BearerToken(context);
  auto verified = verifier.Verify(token.value_or(""), absl::Now());
  if (const auto* refusal = std::get_if<warrant::Refusal>(&verified)) {
    if (token && !token->empty()) entry.set_warrant_sha256(common::Sha256Bytes(*token));
    return RefusalOf(*refusal);
  }
  auto& warrant = std::get<warrant::VerifiedWarrant>(verified);
  // The verifier hashed the token already (its cache key): the same digest, not hashed again.
  entry.set_warrant_sha256(warrant.token_sha256.size() == 64
                               ? absl::HexStringToBytes(warrant.token_sha256)
                               : common::Sha256Bytes(*token));
  FillWarrantFields(warrant, entry);
  source.warrant_verified = true;
  return std::move(warrant);
}

void MarkRefused(const CallRefusal& refusal, v1::LedgerEntry& entry) {
  entry.set_kind(v1::ENTRY_KIND_REFUSAL);
  entry.set_outcome(v1::OUTCOME_REFUSED);
  entry.mutable_refusal()->set_code(refusal.code);
  entry.mutable_refusal()->set_message(BoundedText(refusal.message, kMaxRecordedMessageBytes));
}

grpc::Status RecordRefusal(AuditLog& audit, grpc::ServerContext& context, v1::LedgerEntry entry,
                           const RefusalSource& source, const CallRefusal& refusal,
                           std::string_view log_label) {
  auto receipt = audit.AppendRefusal(std::move(entry), source);
  if (!receipt.ok()) {
    spdlog::error("{} ({}) could not be recorded: {}", log_label, refusal.code,
                  std::string(receipt.status().message()));
  } else if (receipt->has_value()) {
    context.AddTrailingMetadata(kLedgerIndexTrailer, std::to_string((*receipt)->index));
  }
  return grpc::Status(refusal.status, absl::StrCat(refusal.code, ": ", refusal.message));
}

}  // namespace probity::service
