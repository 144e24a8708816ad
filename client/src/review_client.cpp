#include "probity/client/review_client.h"

#include "call_context.h"
#include "probity/client/call_status.h"

namespace probity::client {

ReviewClient::ReviewClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::ReviewService::NewStub(std::move(channel))) {}

absl::StatusOr<ReviewClient> ReviewClient::Connect(const std::string& target, const TlsFiles& tls) {
  auto channel = ConnectChannel(target, tls);
  if (!channel.ok()) return channel.status();
  return ReviewClient(*std::move(channel));
}

absl::StatusOr<v1::RecordReviewResponse> ReviewClient::RecordReview(
    const v1::RecordReviewRequest& request, const std::string& warrant,
    absl::Duration timeout) const {
  grpc::ClientContext context;
  PrepareContext(context, warrant, timeout);
  v1::RecordReviewResponse response;
  const grpc::Status status = stub_->RecordReview(&context, request, &response);
  if (!status.ok()) return CallStatus(status, context);
  return response;
}

}  // namespace probity::client
