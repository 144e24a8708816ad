#pragma once

// Search under a warrant (Search.Search): the investigator's side of the service, used by
// `probity query` and the tests. Failures come back as absl::Status with the gRPC code and
// message; FailureOf (call_status.h) reads the coverage of a failed search from it.

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/client/channel_credentials.h"
#include "probity/v1/search.grpc.pb.h"

namespace probity::client {

class SearchClient {
 public:
  explicit SearchClient(std::shared_ptr<grpc::Channel> channel);

  static absl::StatusOr<SearchClient> Connect(const std::string& target, const TlsFiles& tls);

  // `warrant` is the token as issued (a JWS), empty to send none; `timeout` is counted from now.
  absl::StatusOr<v1::SearchResponse> Search(
      const v1::SearchRequest& request, const std::string& warrant,
      absl::Duration timeout = absl::InfiniteDuration()) const;

 private:
  // Shared, so that the client copies cheaply; a stub is safe to call from several threads.
  std::shared_ptr<v1::Search::Stub> stub_;
};

}  // namespace probity::client
