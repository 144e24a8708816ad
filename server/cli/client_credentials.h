#pragma once

// What every CLI command that calls a Probity server needs before its first RPC: the text of
// a small file (a warrant, a PEM) without trailing whitespace, and the channel credentials
// from --ca / --cert / --key (plaintext when no CA is given, mTLS when a certificate is).

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace probity::cli {

absl::StatusOr<std::string> ReadTrimmedFile(const std::string& path);

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file);

}  // namespace probity::cli
