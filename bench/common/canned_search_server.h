#pragma once

// gRPC's own floor: a Search server that answers every call with one fixed response (taken from
// a real search, so of the real size: same candidates, same signed receipt) and does nothing
// else: no warrant, no shard search, no ledger. Driven by the same clients as the service, what
// it costs per call is what any service over this transport pays before it does any work, and
// its throughput is the ceiling for any gRPC service on that machine with those clients.
//
// With a `work` function, the server runs it on each request before answering (the canned
// response all the same): given the real shard search, it is the ceiling for any gRPC service
// that searches, before warrants, ledger or merge.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "probity/service/grpc_server_options.h"
#include "probity/v1/search.grpc.pb.h"

namespace probity::bench {

class CannedSearchServer {
 public:
  // Runs on the handler's thread before the canned answer goes out.
  using Work = std::function<void(const v1::SearchRequest&)>;

  // Listens on 127.0.0.1 (a free port), plaintext, with the service's own server options
  // (service::ApplyServerOptions) for `max_in_flight`, `max_receive_bytes` and
  // `completion_queues`; nullptr if it cannot listen.
  // `callback_api`: the handler is gRPC's callback API (a reactor finished in the handler, on
  // gRPC's own threads) instead of the synchronous API the service uses (a pool of threads
  // taking calls from completion queues); what each costs per call is what a service built on
  // it pays before any work.
  static std::unique_ptr<CannedSearchServer> Start(v1::SearchResponse response, int max_in_flight,
                                                   int max_receive_bytes, int completion_queues = 1,
                                                   Work work = nullptr, bool callback_api = false);
  ~CannedSearchServer();
  CannedSearchServer(const CannedSearchServer&) = delete;
  CannedSearchServer& operator=(const CannedSearchServer&) = delete;

  int port() const { return port_; }
  // A channel to this server that never leaves the process (gRPC's in-process transport).
  std::shared_ptr<grpc::Channel> InProcessChannel(const grpc::ChannelArguments& args) {
    return server_->InProcessChannel(args);
  }

 private:
  class Service;
  class CallbackService;
  CannedSearchServer() = default;

  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace probity::bench
