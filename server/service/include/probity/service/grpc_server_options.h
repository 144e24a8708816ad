#pragma once

// The gRPC settings every Probity server (embedded, router, shard) is built with.

#include <grpcpp/server_builder.h>

namespace probity::service {

// One completion queue per core (at least one). gRPC's synchronous server takes every incoming
// call through one completion queue unless told otherwise, and all its handler threads poll
// that queue; with one queue per core, calls and pollers spread over several. On a 2-core VM it
// gave 1.22x the searches per second at 64 clients (median of 4 interleaved runs, 0.90x CPU
// per search; bench/RESULTS.md), as gRPC's own benchmarks of the synchronous server do.
int ServerCompletionQueues();

// `max_in_flight` searches may block one thread each. The thread quota bounds the threads next
// to that limit, and as many threads are kept between bursts: gRPC's synchronous server
// otherwise ends every thread beyond two idle ones once its call is answered and starts a new
// one for the next call, which at 64 concurrent clients created about 0.3 threads per search.
// Each of the `completion_queues` (at most `max_in_flight`) keeps one thread polling while idle.
// `max_receive_bytes` is the largest request a caller may send.
void ApplyServerOptions(int max_in_flight, int max_receive_bytes, grpc::ServerBuilder& builder,
                        int completion_queues = ServerCompletionQueues());

}  // namespace probity::service
