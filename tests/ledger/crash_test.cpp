// A child process appends from several threads and is killed with SIGKILL at random moments;
// after each kill the ledger reopens, every entry the child saw acknowledged is there with its
// bytes, and the whole log verifies.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "ledger_test_util.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/verify.h"

namespace probity::ledger {
namespace {

// One acknowledgement, written to the pipe in a single write (below PIPE_BUF, so atomic).
struct Ack {
  uint64_t index;
  char warrant_id[40];
};

[[noreturn]] void AppendUntilKilled(const Options& options, int ack_fd, int round) {
  auto ledger = Ledger::Open(options);
  if (!ledger.ok()) _exit(3);
  std::vector<std::thread> writers;
  std::mutex pipe_mutex;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (uint64_t n = 0;; ++n) {
        const std::string tag = "r" + std::to_string(round) + "t" + std::to_string(t);
        auto receipt = (*ledger)->Append(testing::SampleEntry(n, tag));
        if (!receipt.ok()) _exit(4);
        Ack ack{receipt->index, {}};
        const std::string id = tag + "-" + std::to_string(n);
        std::strncpy(ack.warrant_id, id.c_str(), sizeof(ack.warrant_id) - 1);
        std::lock_guard lock(pipe_mutex);
        if (::write(ack_fd, &ack, sizeof(ack)) != sizeof(ack)) _exit(5);
      }
    });
  }
  for (auto& writer : writers) writer.join();
  _exit(0);
}

TEST(LedgerCrash, AcknowledgedEntriesSurviveSigkill) {
  testing::ScratchDir scratch;
  auto options = testing::MakeOptions(scratch, /*max_segment_bytes=*/4096);
  std::mt19937 random(20261125);
  std::map<uint64_t, std::string> acknowledged;  // index -> warrant id
  constexpr int kKills = 6;
  int torn_tails_seen = 0;
  for (int round = 0; round < kKills; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      AppendUntilKilled(options, fds[1], round);
    }
    ::close(fds[1]);
    // Let it run until it has acknowledged a random number of entries, then kill it at once.
    const int wanted = 5 + static_cast<int>(random() % 60);
    Ack ack{};
    int received = 0;
    while (received < wanted && ::read(fds[0], &ack, sizeof(ack)) == sizeof(ack)) {
      acknowledged[ack.index] = ack.warrant_id;
      ++received;
    }
    ::usleep(random() % 3000);
    ::kill(child, SIGKILL);
    while (::read(fds[0], &ack, sizeof(ack)) == sizeof(ack))
      acknowledged[ack.index] = ack.warrant_id;
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child stopped by itself with " << status;
    ASSERT_EQ(received, wanted) << "the child acknowledged fewer entries than awaited";

    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok()) << "round " << round << ": " << ledger.status();
    if ((*ledger)->Recovery().tail_cut) ++torn_tails_seen;
    for (const auto& [index, warrant_id] : acknowledged) {
      ASSERT_LT(index, (*ledger)->Size()) << "acknowledged entry " << index << " was lost";
      auto bytes = (*ledger)->ReadEntry(index);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      v1::LedgerEntry entry;
      ASSERT_TRUE(entry.ParseFromString(*bytes));
      EXPECT_EQ(entry.warrant_id(), warrant_id) << "entry " << index;
    }
  }
  auto report = VerifyLedger({options.dir, {}, std::nullopt, ""});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
  EXPECT_GE(report->entries, acknowledged.size());
  std::cout << "kills: " << kKills << ", acknowledged entries: " << acknowledged.size()
            << ", torn tails cut on reopen: " << torn_tails_seen << "\n";
}

}  // namespace
}  // namespace probity::ledger
