#include "client_credentials.h"

#include "absl/strings/ascii.h"
#include "probity/common/file_read.h"

namespace probity::cli {

absl::StatusOr<std::string> ReadTrimmedFile(const std::string& path) {
  absl::StatusOr<std::string> text = common::ReadFileToString(path);
  if (!text.ok()) return text.status();
  return std::string(absl::StripAsciiWhitespace(*text));
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file) {
  if (ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  auto ca = ReadTrimmedFile(ca_file);
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca + "\n";
  if (!cert_file.empty()) {
    auto cert = ReadTrimmedFile(cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadTrimmedFile(key_file);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert + "\n";
    options.pem_private_key = *key + "\n";
  }
  return grpc::SslCredentials(options);
}

}  // namespace probity::cli
