#pragma once

// The channel and call settings of one load-generating client (search_load, gpu_bench's service
// load): its own connection, and waiting for that connection rather than failing fast.
//
// Why wait: gRPC 1.51 (Debian 12's) can report a connect that is merely in progress as failed
// (it reads errno after other calls have overwritten it; fixed upstream in grpc/grpc#35064).
// The channel then sits in TRANSIENT_FAILURE for its reconnect backoff, one second by default,
// and every call without wait-for-ready fails at once: in the scale test one client counted
// about 18,000 "failed" searches in that second while the server answered every search it
// received. With a 100 ms first backoff and wait-for-ready, such a connect costs one call about
// 100 ms; an error the server returns is still an error, and a server that is down still fails
// each call at its deadline.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace probity::bench {

// A plaintext channel to `target` with a connection of its own (`client` tells the clients'
// channels apart, so gRPC does not share one connection between them).
std::shared_ptr<grpc::Channel> LoadClientChannel(const std::string& target, int client);

// Call settings every load call uses: wait for the connection (see above), but no later than
// `deadline`, so that a server that is down fails the call.
void PrepareLoadCall(grpc::ClientContext& context, std::chrono::system_clock::time_point deadline);

}  // namespace probity::bench
