// Appends per second through the durable path (one write and one fdatasync per group commit
// before the append returns), with 1, 16 and 64 concurrent writers, group commit against one
// flush per append; and the same without fsync, which leaves the CPU cost (one Ed25519
// signature per group commit, hashing, encoding); and that signature alone, libsodium's against
// OpenSSL's. Set PROBITY_BENCH_DIR to put the ledger on
// the disk under test (default: the temp directory).
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/process_cpu.h"
#include "probity/common/file_read.h"
#include "probity/common/openssl_handles.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/note.h"

namespace probity::ledger {
namespace {

constexpr int kAppendsPerIteration = 256;

v1::LedgerEntry BenchEntry(uint64_t n) {
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(static_cast<int64_t>(n));
  entry.set_kind(v1::ENTRY_KIND_SEARCH);
  entry.set_warrant_id("warrant-" + std::to_string(n % 97));
  entry.set_issuer("issuer");
  entry.mutable_investigator()->set_sub("investigator");
  entry.set_case_number("CASE-1");
  entry.set_purpose("benchmark");
  entry.add_collections("gallery");
  entry.mutable_parameters()->set_k(10);
  auto* query = entry.add_queries();
  query->set_vector_sha256(std::string(32, 'q'));
  for (int i = 0; i < 10; ++i) {
    auto* candidate = query->add_candidates();
    candidate->set_id(i);
    candidate->set_score(0.9f - 0.01f * i);
  }
  entry.set_outcome(v1::OUTCOME_ANSWERED);
  return entry;
}

// A fresh ledger directory with its own signing key under PROBITY_BENCH_DIR (or the temp
// directory); nullopt when it cannot be made.
std::optional<Options> ScratchLedgerOptions(const std::string& name) {
  const char* base = std::getenv("PROBITY_BENCH_DIR");
  const std::filesystem::path dir =
      std::filesystem::path(base ? base : std::filesystem::temp_directory_path().string()) /
      ("probity-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  if (!GenerateSigningKey(dir / "key.pem").ok()) return std::nullopt;
  Options options;
  options.dir = dir / "log";
  options.origin = "bench.probity/log";
  options.signing_key = dir / "key.pem";
  return options;
}

// The same, with the benchmark marked skipped when it cannot be made.
std::optional<Options> FreshLedger(benchmark::State& state, const std::string& name) {
  std::optional<Options> options = ScratchLedgerOptions(name);
  if (!options) state.SkipWithError("cannot make a signing key");
  return options;
}

void RunAppends(benchmark::State& state, bool fsync) {
  const int writers = static_cast<int>(state.range(0));
  const bool group_commit = state.range(1) != 0;
  std::optional<Options> options =
      FreshLedger(state, "ledger-bench-" + std::to_string(writers) +
                             (group_commit ? "-group" : "-single") + (fsync ? "" : "-nofsync"));
  if (!options) return;
  options->group_commit = group_commit;
  options->fsync = fsync;
  {
    auto ledger = Ledger::Open(*options);
    if (!ledger.ok()) {
      state.SkipWithError("cannot open the ledger");
      return;
    }
    const int per_writer = std::max(1, kAppendsPerIteration / writers);
    std::atomic<bool> failed{false};
    for (auto _ : state) {
      std::vector<std::thread> threads;
      for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
          for (int i = 0; i < per_writer; ++i) {
            if (!(*ledger)->Append(BenchEntry(w * 1000000 + i)).ok()) failed = true;
          }
        });
      }
      for (auto& thread : threads) thread.join();
    }
    if (failed) state.SkipWithError("an append failed");
    state.SetItemsProcessed(state.iterations() * writers * per_writer);
  }
  std::filesystem::remove_all(options->dir.parent_path());
}

void BM_DurableAppend(benchmark::State& state) { RunAppends(state, /*fsync=*/true); }
void BM_AppendWithoutFsync(benchmark::State& state) { RunAppends(state, /*fsync=*/false); }

// The same appends from long-lived writers, as a server's handler threads make them: each of
// Google Benchmark's threads appends one entry per iteration to one ledger opened before the
// run (the benchmarks above start a thread per writer every 256 appends, whose cost is part of
// what they measure), after `work_us` of CPU work of its own (0, or about what a search costs a
// server beside its append, so that the writers contend for the cores as a server's do).
// cpu_us_per_append is the whole process's CPU, writers and ledger, work included.
struct SteadyLedger {
  std::optional<Options> options;
  std::unique_ptr<Ledger> ledger;
};
SteadyLedger steady;

// Setup has no benchmark state to skip: BM_SteadyAppends skips when no ledger was opened.
void OpenSteadyLedger(const benchmark::State& state) {
  static int run = 0;
  std::optional<Options> options = ScratchLedgerOptions("steady-" + std::to_string(run++));
  if (!options) return;
  options->fsync = state.range(0) != 0;
  auto ledger = Ledger::Open(*options);
  if (!ledger.ok()) return;
  steady.options = *std::move(options);
  steady.ledger = *std::move(ledger);
}

void CloseSteadyLedger(const benchmark::State&) {
  steady.ledger.reset();
  if (steady.options) std::filesystem::remove_all(steady.options->dir.parent_path());
  steady.options.reset();
}

// Spends `micros` of this thread's CPU time (not wall time, so that being preempted does not
// shorten the work).
void BurnCpu(int64_t micros) {
  const auto thread_cpu_micros = [] {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000;
  };
  const int64_t end = thread_cpu_micros() + micros;
  while (thread_cpu_micros() < end) {
  }
}

void BM_SteadyAppends(benchmark::State& state) {
  const int64_t work_us = state.range(1);
  if (steady.ledger == nullptr) {
    state.SkipWithError("cannot open the ledger");
    return;
  }
  uint64_t n = static_cast<uint64_t>(state.thread_index()) * 1000000;
  bool failed = false;
  {
    bench::ProcessCpuPerIteration cpu(state, "cpu_us_per_append");
    for (auto _ : state) {
      if (work_us > 0) BurnCpu(work_us);
      if (!steady.ledger->Append(BenchEntry(n++)).ok()) failed = true;
    }
  }
  if (failed) state.SkipWithError("an append failed");
  state.SetItemsProcessed(state.iterations());
}

// One checkpoint signature, as each group commit makes it: the ledger's signer (libsodium) against
// OpenSSL's Ed25519 with the same key and checkpoint text, in the same run. The two give the same
// bytes (SignedNoteTest); the ledger signs with the faster.
void BM_CheckpointSignature(benchmark::State& state) {
  const bool openssl = state.range(0) != 0;
  std::optional<Options> options = FreshLedger(state, "sign");
  if (!options) return;
  const std::string text = FormatCheckpoint(Checkpoint{options->origin, 123456, Hash{}, {}});
  auto signer = NoteSigner::Load(options->signing_key, options->origin);
  const std::string pem = common::ReadFileToString(options->signing_key).value_or("");
  common::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  common::PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!signer.ok() || key == nullptr) {
    state.SkipWithError("cannot load the signing key");
    return;
  }
  unsigned char signature[64];
  for (auto _ : state) {
    if (openssl) {
      size_t length = sizeof signature;
      common::MdContextPtr context(EVP_MD_CTX_new());
      EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key.get());
      EVP_DigestSign(context.get(), signature, &length,
                     reinterpret_cast<const unsigned char*>(text.data()), text.size());
      benchmark::DoNotOptimize(signature);
    } else {
      benchmark::DoNotOptimize((*signer)->Sign(text));
    }
  }
  std::filesystem::remove_all(options->dir.parent_path());
}
BENCHMARK(BM_CheckpointSignature)->ArgName("openssl")->Arg(0)->Arg(1);

BENCHMARK(BM_AppendWithoutFsync)
    ->ArgNames({"writers", "group_commit"})
    ->ArgsProduct({{1, 64}, {1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_DurableAppend)
    ->ArgNames({"writers", "group_commit"})
    ->ArgsProduct({{1, 16, 64}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_SteadyAppends)
    ->ArgNames({"fsync", "work_us"})
    ->ArgsProduct({{0, 1}, {0, 150}})
    ->Setup(OpenSteadyLedger)
    ->Teardown(CloseSteadyLedger)
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond);

// Proof and root cost from the stored subtree hashes: O(log n) reads, so a 64x larger log
// should cost about log-proportionally more, not 64x.
void BM_ProofsFromStoredTree(benchmark::State& state) {
  const uint64_t size = static_cast<uint64_t>(state.range(0));
  std::optional<Options> options = FreshLedger(state, "ledger-proof-bench-" + std::to_string(size));
  if (!options) return;
  options->fsync = false;  // building the log is not what is measured
  {
    auto ledger = Ledger::Open(*options);
    if (!ledger.ok()) {
      state.SkipWithError("cannot open the ledger");
      return;
    }
    // Concurrent writers make large batches, so building the log is quick.
    std::vector<std::thread> threads;
    for (int w = 0; w < 32; ++w) {
      threads.emplace_back([&, w] {
        for (uint64_t i = w; i < size; i += 32) (void)(*ledger)->Append(BenchEntry(i));
      });
    }
    for (auto& thread : threads) thread.join();
    std::mt19937_64 random(size);
    for (auto _ : state) {
      const uint64_t tree_size = size - random() % (size / 2);
      auto inclusion = (*ledger)->InclusionProof(random() % tree_size, tree_size);
      auto consistency = (*ledger)->ConsistencyProof(1 + random() % (tree_size - 1), tree_size);
      auto root = (*ledger)->RootAt(tree_size);
      if (!inclusion.ok() || !consistency.ok() || !root.ok()) state.SkipWithError("proof failed");
      benchmark::DoNotOptimize(inclusion);
    }
  }
  std::filesystem::remove_all(options->dir.parent_path());
}

BENCHMARK(BM_ProofsFromStoredTree)->ArgName("entries")->Arg(1024)->Arg(65536);

}  // namespace
}  // namespace probity::ledger

BENCHMARK_MAIN();
