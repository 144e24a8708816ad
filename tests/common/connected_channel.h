#pragma once

// A client channel that has connected before a test calls through it.
//
// Why: Debian 12's gRPC (1.51) checks errno after other calls that follow a non-blocking
// connect() (src/core/lib/iomgr/tcp_client_posix.cc), so now and then, mostly when many
// connections start at once, a connection that is merely in progress is reported as failed
// ("failed to connect to all addresses; ... No such file or directory"). The channel then backs
// off for a second, and a fail-fast call made meanwhile fails UNAVAILABLE although the server is
// up. Waiting until the channel is READY rides that out: the channel tries again after its
// backoff. Upstream gRPC saves errno right after connect() since the end of 2023 (grpc/grpc
// pull request 35064).

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>

namespace probity::test_support {

// Returns `channel` once it is connected, or after `timeout` (a call through it then fails
// with gRPC's own error, which the test reports).
inline std::shared_ptr<grpc::Channel> Connected(
    std::shared_ptr<grpc::Channel> channel,
    std::chrono::seconds timeout = std::chrono::seconds(30)) {
  channel->WaitForConnected(std::chrono::system_clock::now() + timeout);
  return channel;
}

}  // namespace probity::test_support
