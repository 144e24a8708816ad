#include "common/canned_search_server.h"

namespace probity::bench {

namespace {

// What every call gets, whichever API serves it: `work` on its request, then the canned answer.
class CannedAnswer {
 public:
  CannedAnswer(v1::SearchResponse response, CannedSearchServer::Work work)
      : response_(std::move(response)), work_(std::move(work)) {}
  void Answer(const v1::SearchRequest& request, v1::SearchResponse& response) const {
    if (work_) work_(request);
    response = response_;
  }

 private:
  const v1::SearchResponse response_;
  const CannedSearchServer::Work work_;
};

}  // namespace

class CannedSearchServer::Service final : public v1::Search::Service {
 public:
  explicit Service(CannedAnswer answer) : answer_(std::move(answer)) {}
  grpc::Status Search(grpc::ServerContext*, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override {
    answer_.Answer(*request, *response);
    return grpc::Status::OK;
  }

 private:
  const CannedAnswer answer_;
};

class CannedSearchServer::CallbackService final : public v1::Search::CallbackService {
 public:
  explicit CallbackService(CannedAnswer answer) : answer_(std::move(answer)) {}
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* context,
                                   const v1::SearchRequest* request,
                                   v1::SearchResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    answer_.Answer(*request, *response);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const CannedAnswer answer_;
};

std::unique_ptr<CannedSearchServer> CannedSearchServer::Start(v1::SearchResponse response,
                                                              int max_in_flight,
                                                              int max_receive_bytes,
                                                              int completion_queues, Work work,
                                                              bool callback_api) {
  std::unique_ptr<CannedSearchServer> server(new CannedSearchServer);
  CannedAnswer answer(std::move(response), std::move(work));
  if (callback_api) {
    server->service_ = std::make_unique<CallbackService>(std::move(answer));
  } else {
    server->service_ = std::make_unique<Service>(std::move(answer));
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
