// Channel credentials from PEM files: none is plaintext, a CA that cannot be read is an error
// (not a silent fall-back to plaintext), and a trimmed file loses only its outer whitespace.
#include "probity/client/channel_credentials.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/scoped_temp_dir.h"
#include "probity/client/trimmed_file.h"

namespace probity::client {
namespace {

TEST(ChannelCredentialsTest, NoFilesIsPlaintext) {
  auto credentials = ChannelCredentials(TlsFiles{});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST(ChannelCredentialsTest, AnUnreadableCaIsAnError) {
  TlsFiles tls;
  tls.ca_file = "no-such-ca.pem";
  EXPECT_FALSE(ChannelCredentials(tls).ok());
  EXPECT_FALSE(OpenChannel("127.0.0.1:1", tls).ok());
}

TEST(ChannelCredentialsTest, AMissingClientKeyIsAnError) {
  test_support::ScopedTempDir dir;
  std::ofstream(dir.path() / "ca.pem") << "-----BEGIN CERTIFICATE-----\n";
  std::ofstream(dir.path() / "cert.pem") << "-----BEGIN CERTIFICATE-----\n";
  TlsFiles tls{(dir.path() / "ca.pem").string(), (dir.path() / "cert.pem").string(),
               (dir.path() / "missing-key.pem").string()};
  EXPECT_FALSE(ChannelCredentials(tls).ok());
}

TEST(TrimmedFileTest, StripsTheNewlineAroundAToken) {
  test_support::ScopedTempDir dir;
  std::ofstream(dir.path() / "warrant.jws") << "  a.b.c\n\n";
  auto text = ReadTrimmedFile((dir.path() / "warrant.jws").string());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "a.b.c");
  EXPECT_FALSE(ReadTrimmedFile((dir.path() / "absent").string()).ok());
}

}  // namespace
}  // namespace probity::client
