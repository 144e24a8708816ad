// Channel credentials from PEM files: none is plaintext, a CA that cannot be read is an error
// (not a silent fall-back to plaintext), and a trimmed file loses only its outer whitespace.
// ConnectChannel hands over a connected channel where a server listens, and after its wait a
// channel that is not connected where none does.
#include "probity/client/channel_credentials.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/scoped_temp_dir.h"
#include "probity/client/trimmed_file.h"
#include "probity/v1/search.grpc.pb.h"

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

// A loopback server of the Search service's unimplemented base (it only has to accept
// connections); `port` is where it listens.
std::unique_ptr<grpc::Server> StartServer(v1::Search::Service& service, int& port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  return builder.BuildAndStart();
}

TEST(ConnectChannelTest, AChannelToAListeningServerIsConnectedWhenHandedOver) {
  v1::Search::Service service;
  int port = 0;
  std::unique_ptr<grpc::Server> server = StartServer(service, port);
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  // OpenChannel alone connects on the first call.
  auto idle = OpenChannel(target, TlsFiles{});
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_EQ((*idle)->GetState(/*try_to_connect=*/false), GRPC_CHANNEL_IDLE);
  auto connected = ConnectChannel(target, TlsFiles{}, absl::Seconds(30));
  ASSERT_TRUE(connected.ok()) << connected.status();
  EXPECT_EQ((*connected)->GetState(/*try_to_connect=*/false), GRPC_CHANNEL_READY);
  server->Shutdown();
}

TEST(ConnectChannelTest, WithoutAServerTheChannelIsHandedOverAfterTheWait) {
  // A port that was just free: nothing listens there.
  int port = 0;
  {
    v1::Search::Service service;
    std::unique_ptr<grpc::Server> server = StartServer(service, port);
    ASSERT_NE(server, nullptr);
    server->Shutdown();
  }
  const auto begin = std::chrono::steady_clock::now();
  auto channel =
      ConnectChannel("127.0.0.1:" + std::to_string(port), TlsFiles{}, absl::Milliseconds(300));
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_NE((*channel)->GetState(/*try_to_connect=*/false), GRPC_CHANNEL_READY);
  // Handed over after the wait, not after gRPC's own connection timeouts.
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(10));
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
