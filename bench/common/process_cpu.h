#pragma once

// The process's CPU time over a benchmark's timed loop, as a per-iteration counter. Google
// Benchmark starts and stops all threads of a run together, so thread 0's begin and end bracket
// them all, and the counter (summed over threads, divided by all their iterations) is the CPU
// per iteration of every thread of the process: clients, servers and helpers together.

#include <benchmark/benchmark.h>
#include <time.h>

#include <string>

namespace probity::bench {

inline double ProcessCpuMicros() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

// Construct before the loop and destroy (e.g. reset an optional) right after it.
class ProcessCpuPerIteration {
 public:
  ProcessCpuPerIteration(benchmark::State& state, std::string counter)
      : state_(state),
        counter_(std::move(counter)),
        begin_(state.thread_index() == 0 ? ProcessCpuMicros() : 0) {}
  ~ProcessCpuPerIteration() {
    state_.counters[counter_] =
        benchmark::Counter(state_.thread_index() == 0 ? ProcessCpuMicros() - begin_ : 0,
                           benchmark::Counter::kAvgIterations);
  }
  ProcessCpuPerIteration(const ProcessCpuPerIteration&) = delete;
  ProcessCpuPerIteration& operator=(const ProcessCpuPerIteration&) = delete;

 private:
  benchmark::State& state_;
  std::string counter_;
  double begin_;
};

}  // namespace probity::bench
