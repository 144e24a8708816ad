#include "common/callback_clients.h"

#include <algorithm>

#include "common/load_client_channel.h"

namespace probity::bench {

struct CallbackClients::Call {
  grpc::ClientContext context;
  v1::SearchResponse response;
  std::chrono::steady_clock::time_point begin;
};

CallbackClients::CallbackClients(const std::string& target, int clients, std::string authorization,
                                 const v1::SearchRequest& prototype, NextQuery next_query)
    : authorization_(std::move(authorization)), next_query_(std::move(next_query)) {
  clients_.resize(clients);
  for (int c = 0; c < clients; ++c) {
    clients_[c].stub = v1::Search::NewStub(LoadClientChannel(target, c));
    clients_[c].request = prototype;
  }
}

CallbackClients::~CallbackClients() { Stop(); }

void CallbackClients::Start() {
  stopping_ = false;
  {
    std::lock_guard lock(mutex_);
    in_flight_ += static_cast<int>(clients_.size());
  }
  for (int c = 0; c < static_cast<int>(clients_.size()); ++c) Send(c);
}

// One call of `client`, which holds one of in_flight_ until its last call is done.
void CallbackClients::Send(int client) {
  Client& mine = clients_[client];
  auto* values = mine.request.mutable_queries(0)->mutable_values();
  const float* query = next_query_(client);
  std::copy(query, query + values->size(), values->begin());
  auto* call = new Call;
  PrepareLoadCall(call->context, std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!authorization_.empty()) call->context.AddMetadata("authorization", authorization_);
  call->begin = std::chrono::steady_clock::now();
  mine.stub->async()->Search(
      &call->context, &mine.request, &call->response,
      [this, client, call](grpc::Status status) { Done(client, call, status); });
}

void CallbackClients::Done(int client, Call* call, const grpc::Status& status) {
  const double micros =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - call->begin)
          .count();
  delete call;
  bool again = false;
  {
    std::lock_guard lock(mutex_);
    if (status.ok()) {
      latencies_.push_back(micros);
    } else {
      failures_.fetch_add(1);
      if (first_error_.empty()) first_error_ = status.error_message();
    }
    again = !stopping_.load();
  }
  // The next call goes out before this one is counted, so that the clients keep their calls in
  // flight while the waiter runs.
  if (again) Send(client);
  completed_.release();
  if (!again) {
    // Last: once in_flight_ is 0, Stop() may return and the clients be destroyed.
    std::lock_guard lock(mutex_);
    if (--in_flight_ == 0) idle_.notify_all();
  }
}

void CallbackClients::WaitForOne() { completed_.acquire(); }

void CallbackClients::Stop() {
  stopping_ = true;
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

std::vector<double> CallbackClients::TakeLatenciesMicros() {
  std::lock_guard lock(mutex_);
  return std::exchange(latencies_, {});
}

std::string CallbackClients::first_error() const {
  std::lock_guard lock(mutex_);
  return first_error_;
}

}  // namespace probity::bench
