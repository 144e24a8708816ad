#pragma once

// A TCP proxy on loopback that adds a fixed delay to every byte in both directions (a slow
// link, where the kernel has no netem). The `delay_proxy` tool (delay_proxy_main.cpp) runs one
// as a process for the scale benchmark. Each chunk read is forwarded `delay` after it arrived,
// by a writer thread per direction, so the delay is added once, not per queued chunk.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace probity::service::testing {

class DelayProxy {
 public:
  // Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:target_port.
  explicit DelayProxy(int target_port) : DelayProxy("127.0.0.1", target_port) {}
  // Listens on 127.0.0.1 (a free port) and forwards to target_ipv4:target_port; port() is 0
  // when the address does not parse or nothing could be bound.
  DelayProxy(const std::string& target_ipv4, int target_port);
  ~DelayProxy();
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  int port() const { return port_; }
  void SetDelayMs(int delay_ms) { delay_ms_.store(delay_ms); }
  // Connections accepted and forwarded so far.
  size_t connections() const;

 private:
  struct Link;
  void Accept();

  const std::string target_ipv4_;
  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> delay_ms_{0};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Link>> links_;
};

}  // namespace probity::service::testing
