#pragma once

// The gRPC settings every Probity server (embedded, router, shard) is built with.

#include <grpcpp/server_builder.h>

namespace probity::service {

// `max_in_flight` searches may block one thread each. The thread quota bounds the threads next
// to that limit, and as many threads are kept between bursts: gRPC's synchronous server
// otherwise ends every thread beyond two idle ones once its call is answered and starts a new
// one for the next call, which at 64 concurrent clients created about 0.3 threads per search.
// `max_receive_bytes` is the largest request a caller may send.
void ApplyServerOptions(int max_in_flight, int max_receive_bytes, grpc::ServerBuilder& builder);

}  // namespace probity::service
