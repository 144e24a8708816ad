#pragma once

// A real gRPC server on a free loopback port, plaintext, for tests that call a fake or a real
// service through a real client.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace probity::test_support {

struct LoopbackGrpcServer {
  std::unique_ptr<grpc::Server> server;  // null when it could not start
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

inline LoopbackGrpcServer StartLoopbackGrpcServer(grpc::Service* service) {
  LoopbackGrpcServer started;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &started.port);
  builder.RegisterService(service);
  started.server = builder.BuildAndStart();
  return started;
}

}  // namespace probity::test_support
