// delay_proxy: the test suite's DelayProxy as a process, for the scale benchmark
// (bench/server/scale.sh), whose shard servers run in other network namespaces on a kernel
// without netem. It forwards 127.0.0.1:<free port> to TARGET_IPV4:PORT and writes its port to
// PORT_FILE; SIGUSR1 adds DELAY_MS to every byte in both directions, SIGUSR2 removes it,
// SIGTERM or SIGINT ends it.
//
//   delay_proxy TARGET_IPV4:PORT PORT_FILE DELAY_MS
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "delay_proxy.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: delay_proxy TARGET_IPV4:PORT PORT_FILE DELAY_MS\n";
    return 2;
  }
  const std::string target = argv[1];
  const size_t colon = target.rfind(':');
  const int delay_ms = std::atoi(argv[3]);
  if (colon == std::string::npos || std::atoi(target.c_str() + colon + 1) <= 0 || delay_ms < 0) {
    std::cerr << "delay_proxy: want TARGET_IPV4:PORT and a delay in ms, got " << target << " "
              << argv[3] << "\n";
    return 2;
  }
  // Block the signals before any thread starts, so that only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  probity::service::testing::DelayProxy proxy(target.substr(0, colon),
                                              std::atoi(target.c_str() + colon + 1));
  if (proxy.port() == 0) {
    std::cerr << "delay_proxy: cannot listen, or " << target << " is not an IPv4 address\n";
    return 1;
  }
  const std::string port_file = argv[2];
  std::ofstream(port_file + ".tmp") << proxy.port() << "\n";
  if (std::rename((port_file + ".tmp").c_str(), port_file.c_str()) != 0) return 1;
  while (true) {
    int received = 0;
    if (sigwait(&signals, &received) != 0) return 1;
    if (received == SIGUSR1) proxy.SetDelayMs(delay_ms);
    if (received == SIGUSR2) proxy.SetDelayMs(0);
    if (received == SIGTERM || received == SIGINT) return 0;
  }
}
