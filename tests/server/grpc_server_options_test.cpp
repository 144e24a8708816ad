// The gRPC server settings of every Probity server, on a real server: handler threads stay
// for the next burst of concurrent calls instead of being ended and started again, and calls
// come in through one completion queue per core, each with a thread polling it.
#include "probity/service/grpc_server_options.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/held_calls.h"
#include "probity/service/server.h"
#include "probity/v1/search.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

// Holds every call until `Open`, recording the thread each ran on.
class GatedSearch final : public v1::Search::Service {
 public:
  grpc::Status Search(grpc::ServerContext*, const v1::SearchRequest*,
                      v1::SearchResponse*) override {
    {
      std::lock_guard lock(mutex_);
      threads_.insert(static_cast<pid_t>(syscall(SYS_gettid)));
    }
    held_.EnterAndWait();
    return grpc::Status::OK;
  }

  test_support::HeldCalls& held() { return held_; }
  // Holds calls again and forgets the threads seen.
  void Reset() {
    held_.Close();
    std::lock_guard lock(mutex_);
    threads_.clear();
  }
  std::set<pid_t> threads() {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  test_support::HeldCalls held_;
  std::mutex mutex_;
  std::set<pid_t> threads_;
};

std::set<pid_t> ThreadsOfThisProcess() {
  std::set<pid_t> threads;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    threads.insert(static_cast<pid_t>(std::stoi(task.path().filename().string())));
  }
  return threads;
}

// The threads gRPC's synchronous server polls its completion queues with ("grpcpp_sync_server",
// cut to the 15 characters a thread name has).
int SyncServerThreads() {
  int count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    count += name.starts_with("grpcpp_sync_ser");
  }
  return count;
}

// The polling threads started since `before` was counted, once `expected` of them have appeared
// (or 5 s have passed) and 100 ms more have shown whether any others follow.
int PollersStartedSince(int before, int expected) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (SyncServerThreads() - before < expected && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return SyncServerThreads() - before;
}

// A plaintext loopback server of `service` with ApplyServerOptions; null if it cannot start.
std::unique_ptr<grpc::Server> StartServer(GatedSearch& service, int max_in_flight, int queues,
                                          int& port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  ApplyServerOptions(max_in_flight, 1 << 20, builder, queues);
  return builder.BuildAndStart();
}

// `calls` concurrent searches, all held in their handlers at once, then released.
void Burst(GatedSearch& service, v1::Search::Stub& stub, int calls) {
  std::vector<std::thread> clients;
  for (int i = 0; i < calls; ++i) {
    clients.emplace_back([&stub] {
      grpc::ClientContext context;
      v1::SearchResponse response;
      EXPECT_TRUE(stub.Search(&context, v1::SearchRequest(), &response).ok());
    });
  }
  service.held().WaitForEntered(calls);
  service.held().Open();
  for (std::thread& client : clients) client.join();
}

TEST(GrpcServerOptionsTest, HandlerThreadsOfOneBurstServeTheNextInsteadOfNewOnes) {
  constexpr int kCalls = 12;
  GatedSearch service;
  int port = 0;
  // One completion queue, so that every call of both bursts draws on the same kept threads
  // (with several, a burst's calls may spread over the queues differently from the last).
  std::unique_ptr<grpc::Server> server =
      StartServer(service, /*max_in_flight=*/32, /*queues=*/1, port);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Search::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  Burst(service, *stub, kCalls);
  const std::set<pid_t> after_first = ThreadsOfThisProcess();
  service.Reset();
  Burst(service, *stub, kCalls);
  const std::set<pid_t> second = service.threads();
  ASSERT_EQ(second.size(), static_cast<size_t>(kCalls)) << "each call held its own thread";
  int started_for_second = 0;
  for (pid_t thread : second) started_for_second += after_first.count(thread) == 0;
  // gRPC starts one more thread whenever none is left waiting for calls, so a burst may still
  // add a few; without the option it ended all but two threads of the first burst and started
  // about kCalls new ones.
  EXPECT_LE(started_for_second, 3) << "of " << kCalls << " handler threads";
  server->Shutdown();
}

TEST(GrpcServerOptionsTest, EachCompletionQueueHasAThreadPollingItWhileIdle) {
  EXPECT_EQ(OneCompletionQueuePerCore(),
            std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  constexpr int kQueues = 3;
  GatedSearch service;
  const int before = SyncServerThreads();
  int port = 0;
  std::unique_ptr<grpc::Server> server = StartServer(service, /*max_in_flight=*/32, kQueues, port);
  ASSERT_NE(server, nullptr);
  // The pollers start with the server; with no call made, one per queue and no more.
  EXPECT_EQ(PollersStartedSince(before, kQueues), kQueues);
  server->Shutdown();
}

// gRPC reserves one thread of the quota per queue at start and cannot start without them, so a
// small max_in_flight on a machine with many cores must not ask for more queues than that.
TEST(GrpcServerOptionsTest, QueuesAreCappedAtMaxInFlightAndTheServerServes) {
  constexpr int kMaxInFlight = 2;
  GatedSearch service;
  const int before = SyncServerThreads();
  int port = 0;
  // Without the cap gRPC 1.51 aborts the process here: no quota for a poller on every queue.
  std::unique_ptr<grpc::Server> server = StartServer(service, kMaxInFlight, /*queues=*/64, port);
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(PollersStartedSince(before, kMaxInFlight), kMaxInFlight);
  auto stub = v1::Search::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  Burst(service, *stub, kMaxInFlight);
  server->Shutdown();
}

// The config's grpc_completion_queues reaches the server (0, the default, is gRPC's one).
TEST(GrpcServerOptionsTest, TheConfigSetsTheServersCompletionQueues) {
  constexpr int kQueues = 3;
  auto world = MakeWorld(/*num_shards=*/1);
  ServerConfig config = world->config;
  config.grpc_completion_queues = kQueues;
  const int before = SyncServerThreads();
  auto server = Server::StartRouter(config);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(PollersStartedSince(before, kQueues), kQueues);
  (*server)->Shutdown(absl::Seconds(1));
  (*server)->Wait();
}

}  // namespace
}  // namespace probity::service::testing
