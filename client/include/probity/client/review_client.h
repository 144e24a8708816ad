#pragma once

// Record the human review of a search (ReviewService.RecordReview) under its warrant, used by
// `probity review` and the tests. Failures come back as absl::Status with the gRPC code and
// message; LedgerEntryOf (call_status.h) reads the entry that recorded a refusal.

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/client/channel_credentials.h"
#include "probity/v1/review.grpc.pb.h"

namespace probity::client {

class ReviewClient {
 public:
  explicit ReviewClient(std::shared_ptr<grpc::Channel> channel);

  static absl::StatusOr<ReviewClient> Connect(const std::string& target, const TlsFiles& tls);

  // `warrant` is the token as issued (a JWS), empty to send none; `timeout` is counted from now.
  absl::StatusOr<v1::RecordReviewResponse> RecordReview(
      const v1::RecordReviewRequest& request, const std::string& warrant,
      absl::Duration timeout = absl::InfiniteDuration()) const;

 private:
  // Shared, so that the client copies cheaply; a stub is safe to call from several threads.
  std::shared_ptr<v1::ReviewService::Stub> stub_;
};

}  // namespace probity::client
