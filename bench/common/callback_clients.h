#pragma once

// Single-query load clients on gRPC's callback API, for the benchmarks that load a Search
// server from the same machine (server_bench, gpu_bench). Each client has a connection of its
// own (LoadClientChannel) and one call in flight, and sends its next call from the previous
// one's completion, on gRPC's own threads: no thread per client.
//
// Why: a blocking client per thread wakes its thread for every answer. With the clients in the
// process and on the machine under test, that CPU is taken from the server; callback clients
// measure how many searches the server answers with less of its machine spent on the load.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <vector>

#include "probity/v1/search.grpc.pb.h"

namespace probity::bench {

class CallbackClients {
 public:
  // The first values of client `client`'s next query (as many as the prototype's first query
  // has); its previous call has completed.
  using NextQuery = std::function<const float*(int client)>;

  // `clients` clients of the Search server at `target`, each sending `prototype` with its
  // first query's values replaced by `next_query`'s; every call carries `authorization` as its
  // metadata unless it is empty.
  CallbackClients(const std::string& target, int clients, std::string authorization,
                  const v1::SearchRequest& prototype, NextQuery next_query);
  ~CallbackClients();  // Stop()
  CallbackClients(const CallbackClients&) = delete;
  CallbackClients& operator=(const CallbackClients&) = delete;

  // Sends every client's first call.
  void Start();
  // Blocks until one more call has completed.
  void WaitForOne();
  // Stops sending and waits until no call is in flight.
  void Stop();

  // Latencies of the answered calls since the last Take, in microseconds.
  std::vector<double> TakeLatenciesMicros();
  uint64_t failures() const { return failures_.load(); }
  std::string first_error() const;

 private:
  struct Client {
    std::unique_ptr<v1::Search::Stub> stub;
    v1::SearchRequest request;
  };
  struct Call;

  void Send(int client);
  void Done(int client, Call* call, const grpc::Status& status);

  std::vector<Client> clients_;
  const std::string authorization_;
  const NextQuery next_query_;
  std::counting_semaphore<> completed_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> failures_{0};
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  int in_flight_ = 0;              // guarded by mutex_
  std::vector<double> latencies_;  // guarded by mutex_
  std::string first_error_;        // guarded by mutex_
};

}  // namespace probity::bench
