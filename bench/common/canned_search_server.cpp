#include "common/canned_search_server.h"

namespace probity::bench {

class CannedSearchServer::Service final : public v1::Search::Service {
 public:
  Service(v1::SearchResponse response, Work work)
      : response_(std::move(response)), work_(std::move(work)) {}
  grpc::Status Search(grpc::ServerContext*, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override {
    if (work_) work_(*request);
    *response = response_;
    return grpc::Status::OK;
  }

 private:
  const v1::SearchResponse response_;
  const Work work_;
};

class CannedSearchServer::CallbackService final : public v1::Search::CallbackService {
 public:
  CallbackService(v1::SearchResponse response, Work work)
      : response_(std::move(response)), work_(std::move(work)) {}
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* context,
                                   const v1::SearchRequest* request,
                                   v1::SearchResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (work_) work_(*request);
    *response = response_;
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const v1::SearchResponse response_;
  const Work work_;
};

std::unique_ptr<CannedSearchServer> CannedSearchServer::Start(v1::SearchResponse response,
                                                              int max_in_flight,
                                                              int max_receive_bytes,
                                                              int completion_queues, Work work,
                                                              bool callback_api) {
  std::unique_ptr<CannedSearchServer> server(new CannedSearchServer);
  if (callback_api) {
    server->service_ = std::make_unique<CallbackService>(std::move(response), std::move(work));
  } else {
    server->service_ = std::make_unique<Service>(std::move(response), std::move(work));
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  service::ApplyServerOptions(max_in_flight, max_receive_bytes, builder, completion_queues);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) return nullptr;
  return server;
}

CannedSearchServer::~CannedSearchServer() {
  if (server_ != nullptr) server_->Shutdown();
}

}  // namespace probity::bench
