#pragma once

// The channel every Probity client opens: plaintext when no CA is given (loopback, the demo),
// TLS when one is, mutual TLS when a client certificate and key are given as well.

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

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

}  // namespace probity::client
