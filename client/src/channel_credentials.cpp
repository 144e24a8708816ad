#include "probity/client/channel_credentials.h"

#include <grpcpp/create_channel.h>

#include "probity/client/trimmed_file.h"

namespace probity::client {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsFiles& tls) {
  if (tls.ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  auto ca = ReadTrimmedFile(tls.ca_file);
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca + "\n";
  if (!tls.cert_file.empty()) {
    auto cert = ReadTrimmedFile(tls.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadTrimmedFile(tls.key_file);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert + "\n";
    options.pem_private_key = *key + "\n";
  }
  return grpc::SslCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& target,
                                                           const TlsFiles& tls) {
  auto credentials = ChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateChannel(target, *credentials);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(const std::string& target,
                                                              const TlsFiles& tls,
                                                              absl::Duration wait) {
  auto channel = OpenChannel(target, tls);
  if (!channel.ok()) return channel.status();
  (*channel)->WaitForConnected(absl::ToChronoTime(absl::Now() + wait));
  return channel;
}

}  // namespace probity::client
