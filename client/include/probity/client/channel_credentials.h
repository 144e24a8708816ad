#pragma once

// The channel every Probity client opens: plaintext when no CA is given (loopback, the demo),
// TLS when one is, mutual TLS when a client certificate and key are given as well.

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace probity::client {

// PEM files; every path empty means plaintext.
struct TlsFiles {
  std::string ca_file;    // the server's CA: use TLS
  std::string cert_file;  // with key_file: present this client certificate (mutual TLS)
  std::string key_file;
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsFiles& tls);

// A channel to host:port with ChannelCredentials(tls); it connects on its first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& target,
                                                           const TlsFiles& tls);

// How long ConnectChannel waits for a connection: more than the one-second backoff after
// Debian 12 gRPC's spurious connect failure (README.md, "A known flaw").
inline constexpr absl::Duration kConnectWait = absl::Seconds(3);

// OpenChannel, then up to `wait` for the channel to connect, so that a first call is not failed
// by gRPC 1.51's spurious connect failure while the server is up. A channel that has not
// connected by then (no server there, a TLS mismatch) is returned all the same: its first call
// fails at once with gRPC's own reason.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(const std::string& target,
                                                              const TlsFiles& tls,
                                                              absl::Duration wait = kConnectWait);

}  // namespace probity::client
