#pragma once

// The gRPC settings every Probity server (embedded, router, shard) is built with.

#include <grpcpp/server_builder.h>

namespace probity::service {

// One completion queue per core (at least one): the alternative to gRPC's default of a single
// queue, which every handler thread polls. On a 2-core VM neither won robustly (bench/RESULTS.md:
// 1.22x and 0.91x the searches per second at 64 clients in different measurements), so servers
// keep gRPC's single queue unless the config's grpc_completion_queues says otherwise, and the
// benchmarks compare the two.
int OneCompletionQueuePerCore();

// `max_in_flight` searches may block one thread each. The thread quota bounds the threads next
// to that limit, and as many threads are kept between bursts: gRPC's synchronous server
// otherwise ends every thread beyond two idle ones once its call is answered and starts a new
// one for the next call, which at 64 concurrent clients created about 0.3 threads per search.
// Each of the `completion_queues` (at least 1, at most `max_in_flight`) keeps one thread polling
// while idle.
// `max_receive_bytes` is the largest request a caller may send.
void ApplyServerOptions(int max_in_flight, int max_receive_bytes, grpc::ServerBuilder& builder,
                        int completion_queues = 1);

}  // namespace probity::service
