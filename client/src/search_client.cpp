#include "probity/client/search_client.h"

#include "call_context.h"
#include "probity/client/call_status.h"

namespace probity::client {

SearchClient::SearchClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::Search::NewStub(std::move(channel))) {}

absl::StatusOr<SearchClient> SearchClient::Connect(const std::string& target, const TlsFiles& tls) {
  auto channel = ConnectChannel(target, tls);
  if (!channel.ok()) return channel.status();
  return SearchClient(*std::move(channel));
}

absl::StatusOr<v1::SearchResponse> SearchClient::Search(const v1::SearchRequest& request,
                                                        const std::string& warrant,
                                                        absl::Duration timeout) const {
  grpc::ClientContext context;
  PrepareContext(context, warrant, timeout);
  v1::SearchResponse response;
  const grpc::Status status = stub_->Search(&context, request, &response);
  if (!status.ok()) return CallStatus(status, context);
  return response;
}

}  // namespace probity::client
