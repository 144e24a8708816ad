#include "delay_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <string>

namespace probity::service::testing {
namespace {

using Clock = std::chrono::steady_clock;

// One direction of a connection: a reader that timestamps chunks and a writer that sends each
// one once its delay has passed.
class Pump {
 public:
  Pump(int from, int to, const std::atomic<int>& delay_ms)
      : from_(from), to_(to), delay_ms_(delay_ms) {
    reader_ = std::thread([this] { Read(); });
    writer_ = std::thread([this] { Write(); });
  }
  ~Pump() {
    reader_.join();
    writer_.join();
  }

 private:
  struct Chunk {
    Clock::time_point due;
    std::string bytes;  // empty: the end of the stream
  };

  void Read() {
    char buffer[16384];
    while (true) {
      const ssize_t n = ::read(from_, buffer, sizeof(buffer));
      const auto due = Clock::now() + std::chrono::milliseconds(delay_ms_.load());
      std::lock_guard lock(mutex_);
      queue_.push_back({due, n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string()});
      ready_.notify_one();
      if (n <= 0) return;
    }
  }

  void Write() {
    while (true) {
      Chunk chunk;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty(); });
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      std::this_thread::sleep_until(chunk.due);
      if (chunk.bytes.empty()) {
        ::shutdown(to_, SHUT_WR);
        return;
      }
      size_t sent = 0;
      while (sent < chunk.bytes.size()) {
        const ssize_t n =
            ::send(to_, chunk.bytes.data() + sent, chunk.bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          ::shutdown(from_, SHUT_RDWR);  // the other side is gone: end the reader too
          Drain();
          return;
        }
        sent += static_cast<size_t>(n);
      }
    }
  }

  // After a failed send: wait for the reader's end of stream so that it never blocks on us.
  void Drain() {
    while (true) {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return !queue_.empty(); });
      const bool end = queue_.back().bytes.empty();
      queue_.clear();
      if (end) return;
    }
  }

  const int from_;
  const int to_;
  const std::atomic<int>& delay_ms_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Chunk> queue_;
  std::thread reader_;
  std::thread writer_;
};

int Connect(const std::string& ipv4, int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ipv4.c_str(), &address.sin_addr) != 1) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

struct DelayProxy::Link {
  Link(int client, int server, const std::atomic<int>& delay_ms)
      : client_fd(client),
        server_fd(server),
        upstream(std::make_unique<Pump>(client, server, delay_ms)),
        downstream(std::make_unique<Pump>(server, client, delay_ms)) {}
  ~Link() {
    ::shutdown(client_fd, SHUT_RDWR);
    ::shutdown(server_fd, SHUT_RDWR);
    upstream.reset();
    downstream.reset();
    ::close(client_fd);
    ::close(server_fd);
  }
  int client_fd;
  int server_fd;
  std::unique_ptr<Pump> upstream;
  std::unique_ptr<Pump> downstream;
};

DelayProxy::DelayProxy(const std::string& target_ipv4, int target_port)
    : target_ipv4_(target_ipv4), target_port_(target_port) {
  in_addr parsed{};
  if (::inet_pton(AF_INET, target_ipv4.c_str(), &parsed) != 1) return;
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::listen(listen_fd_, 16) == 0 &&
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port_ = ntohs(address.sin_port);
  }
  acceptor_ = std::thread([this] { Accept(); });
}

DelayProxy::~DelayProxy() {
  stopping_.store(true);
  if (listen_fd_ < 0) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::lock_guard lock(mutex_);
  links_.clear();
}

size_t DelayProxy::connections() const {
  std::lock_guard lock(mutex_);
  return links_.size();
}

void DelayProxy::Accept() {
  while (!stopping_.load()) {
    const int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) return;
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int server = Connect(target_ipv4_, target_port_);
    if (server < 0) {
      ::close(client);
      continue;
    }
    std::lock_guard lock(mutex_);
    links_.push_back(std::make_unique<Link>(client, server, delay_ms_));
  }
}

}  // namespace probity::service::testing
