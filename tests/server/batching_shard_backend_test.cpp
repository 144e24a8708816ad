// Dynamic batching of shard searches over a real FAISS IVF-PQ index: every request gets exactly
// what it gets alone (different queries, k, min_score, nprobe; score ties at the cut), searches
// really share calls, the maximum batch splits queues in arrival order, deadlines and failures
// stay per request. A gate in front of the index holds the first call so that batches form
// deterministically, without sleeping.
#include "probity/service/batching_shard_backend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "probity/index/sharded_index.h"
#include "probity/index/synthetic.h"
#include "probity/service/config.h"

namespace probity::index {
// Names the metric in test names and messages (GoogleTest finds it by argument lookup).
void PrintTo(Metric metric, std::ostream* out) { *out << MetricName(metric); }
}  // namespace probity::index

namespace probity::service {
namespace {

constexpr int kDim = 32;
constexpr int kShards = 2;

// Searches a ShardedIndex directly, records every call's size and nprobe, and can hold calls
// at a gate or fail them.
class IndexBackend : public ShardBackend {
 public:
  explicit IndexBackend(const index::ShardedIndex& index) : index_(index) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time /*deadline*/) override {
    {
      std::unique_lock lock(mutex_);
      calls_.push_back({static_cast<int>(query.queries.size() / query.dim), query.params.nprobe});
      ++entered_;
      in_call_ += 1;
      most_in_call_ = std::max(most_in_call_, in_call_);
      changed_.notify_all();
      changed_.wait(lock, [&] { return open_; });
    }
    struct Leave {
      IndexBackend* backend;
      ~Leave() {
        std::lock_guard lock(backend->mutex_);
        backend->in_call_ -= 1;
      }
    } leave{this};
    if (fail_with_) return *fail_with_;
    if (throw_) throw std::runtime_error("injected");
    auto hits = index_.SearchShard(query.shard, query.queries, query.params);
    if (!hits.ok()) return hits.status();
    return ShardAnswer{*std::move(hits), "gen-1"};
  }
  std::string Describe() const override { return "index"; }

  void Close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Fails the test (instead of hanging it) when that many calls do not arrive in a minute.
  void WaitEntered(int calls) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, std::chrono::minutes(1), [&] { return entered_ >= calls; })) {
      ADD_FAILURE() << "only " << entered_ << " of " << calls << " calls reached the backend";
    }
  }
  struct Call {
    int queries;
    int nprobe;
  };
  std::vector<Call> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  void Reset() {
    std::lock_guard lock(mutex_);
    calls_.clear();
    entered_ = 0;
  }
  // The most calls that were in this backend at once.
  int most_in_call() {
    std::lock_guard lock(mutex_);
    return most_in_call_;
  }
  std::optional<absl::Status> fail_with_;
  bool throw_ = false;

 private:
  const index::ShardedIndex& index_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  int entered_ = 0;
  int in_call_ = 0;
  int most_in_call_ = 0;
  std::vector<Call> calls_;
};

struct Index {
  index::SyntheticGallery gallery;
  std::unique_ptr<index::ShardedIndex> index;
};

// `duplicates` copies of every gallery vector, added with descending ids, give exact score
// ties whose FAISS order (scan order) differs from the (score, id) order of the answers.
Index BuildIndex(index::Metric metric, int duplicates) {
  Index out;
  index::SyntheticOptions options;
  options.identities = 200;
  options.images_per_identity = 4;
  options.num_queries = 40;
  options.dim = kDim;
  options.intrinsic_dim = 12;
  options.ground_truth_k = 1;
  options.seed = 11;
  out.gallery = *index::GenerateSyntheticGallery(options);
  index::CollectionSpec spec{"IVF8,PQ8x4np", metric, kDim};
  auto built = index::ShardedIndex::Train(spec, out.gallery.gallery, kShards);
  EXPECT_TRUE(built.ok()) << built.status();
  const int64_t n = static_cast<int64_t>(out.gallery.gallery_labels.size());
  for (int copy = duplicates - 1; copy >= 0; --copy) {
    std::vector<int64_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = (n - 1 - i) * duplicates + copy;
    std::vector<float> reversed(out.gallery.gallery.size());
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(out.gallery.gallery.data() + (n - 1 - i) * kDim, kDim,
                  reversed.data() + i * kDim);
    }
    EXPECT_TRUE((*built)->Add(reversed, ids).ok());
  }
  out.index = std::move(*built);
  return out;
}

// Trained once per test program (training dominates the run time); searches never change it.
const Index& MakeIndex(index::Metric metric, int duplicates = 1) {
  static std::mutex mutex;
  static std::map<std::pair<index::Metric, int>, Index> built;
  std::lock_guard lock(mutex);
  auto it = built.find({metric, duplicates});
  if (it == built.end()) {
    it = built.emplace(std::make_pair(metric, duplicates), BuildIndex(metric, duplicates)).first;
  }
  return it->second;
}

struct Request {
  ShardQuery query;
  std::vector<float> vectors;
};

Request MakeRequest(const Index& index, int first_query, int count, int k,
                    std::optional<float> min_score, int nprobe, index::Metric metric,
                    int shard = 0) {
  Request r;
  r.vectors.assign(index.gallery.queries.begin() + first_query * kDim,
                   index.gallery.queries.begin() + (first_query + count) * kDim);
  r.query.collection = "faces";
  r.query.shard = shard;
  r.query.dim = kDim;
  r.query.params.k = k;
  r.query.params.nprobe = nprobe;
  r.query.params.min_score = min_score;
  r.query.metric = metric;
  return r;
}

// What the request gets without batching.
std::vector<index::HitList> Alone(const Index& index, const Request& r) {
  auto hits = index.index->SearchShard(r.query.shard, r.vectors, r.query.params);
  EXPECT_TRUE(hits.ok()) << hits.status();
  return hits.ok() ? *hits : std::vector<index::HitList>{};
}

void ExpectSameHits(const std::vector<index::HitList>& got,
                    const std::vector<index::HitList>& expected, const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t q = 0; q < got.size(); ++q) {
    ASSERT_EQ(got[q].size(), expected[q].size()) << what << " query " << q;
    for (size_t r = 0; r < got[q].size(); ++r) {
      EXPECT_EQ(got[q][r].id, expected[q][r].id) << what << " query " << q << " rank " << r;
      EXPECT_EQ(got[q][r].score, expected[q][r].score) << what << " query " << q << " rank " << r;
      EXPECT_EQ(got[q][r].shard, expected[q][r].shard) << what << " query " << q << " rank " << r;
    }
  }
}

// Checks that each answer of `which` (every one when it is empty) succeeded with the hits its
// request gets when searched alone.
void ExpectAnsweredAsAlone(const Index& index, const std::vector<Request>& requests,
                           const std::vector<absl::StatusOr<ShardAnswer>>& answers,
                           std::vector<size_t> which = {}) {
  if (which.empty()) {
    for (size_t i = 0; i < requests.size(); ++i) which.push_back(i);
  }
  for (size_t i : which) {
    ASSERT_TRUE(answers[i].ok()) << "request " << i << ": " << answers[i].status();
    ExpectSameHits(answers[i]->hits, Alone(index, requests[i]), "request " + std::to_string(i));
  }
}

// Starts each request's search on a thread of its own when the test says (so that it can fix
// which searches run, queue or wait) and keeps the answers, by request.
class ConcurrentSearches {
 public:
  ConcurrentSearches(ShardBackend& backend, std::vector<Request>& requests)
      : backend_(backend),
        requests_(requests),
        answers_(requests.size(), absl::UnknownError("not run")),
        threads_(requests.size()) {}
  ~ConcurrentSearches() { JoinAll(); }

  void Launch(size_t i, absl::Time deadline = absl::InfiniteFuture()) {
    threads_[i] = std::thread([this, i, deadline] {
      requests_[i].query.queries = requests_[i].vectors;
      answers_[i] = backend_.Search(requests_[i].query, deadline);
    });
  }
  // Waits for request i's search to return.
  void Join(size_t i) {
    if (threads_[i].joinable()) threads_[i].join();
  }
  void JoinAll() {
    for (size_t i = 0; i < threads_.size(); ++i) Join(i);
  }
  const absl::StatusOr<ShardAnswer>& answer(size_t i) const { return answers_[i]; }
  const std::vector<absl::StatusOr<ShardAnswer>>& answers() const { return answers_; }

 private:
  ShardBackend& backend_;
  std::vector<Request>& requests_;
  std::vector<absl::StatusOr<ShardAnswer>> answers_;
  std::vector<std::thread> threads_;
};

// Runs every request on its own thread, returning their answers in order.
std::vector<absl::StatusOr<ShardAnswer>> RunConcurrently(
    ShardBackend& backend, std::vector<Request>& requests,
    std::function<absl::Time(size_t)> deadline = [](size_t) { return absl::InfiniteFuture(); }) {
  ConcurrentSearches searches(backend, requests);
  for (size_t i = 0; i < requests.size(); ++i) searches.Launch(i, deadline(i));
  searches.JoinAll();
  return searches.answers();
}

// Fails the test (instead of hanging it) when that many requests do not queue in a minute.
void WaitQueued(const BatchingShardBackend& backend, size_t count) {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (backend.queued() < count) {
    if (absl::Now() > give_up) {
      ADD_FAILURE() << "only " << backend.queued() << " of " << count << " requests queued";
      return;
    }
    std::this_thread::yield();
  }
}

TEST(CutToRequest, TakesTheFirstKThatPassMinScore) {
  const index::HitList hits = {{1, 0.9f, 0}, {2, 0.8f, 0}, {3, 0.7f, 0}, {4, 0.6f, 0}};
  auto cut = CutToRequest(hits, 2, std::nullopt, index::Metric::kInnerProduct);
  ASSERT_TRUE(cut.has_value());
  ASSERT_EQ(cut->size(), 2u);
  EXPECT_EQ((*cut)[1].id, 2);
  cut = CutToRequest(hits, 3, 0.75f, index::Metric::kInnerProduct);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->size(), 2u);
  cut = CutToRequest(hits, 10, std::nullopt, index::Metric::kInnerProduct);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->size(), 4u);
  // L2: lower is better and min_score is the largest distance kept.
  const index::HitList l2 = {{1, 0.1f, 0}, {2, 0.2f, 0}, {3, 0.3f, 0}};
  cut = CutToRequest(l2, 3, 0.25f, index::Metric::kL2);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->size(), 2u);
}

TEST(CutToRequest, RefusesACutThroughATie) {
  const index::HitList hits = {{1, 0.9f, 0}, {2, 0.8f, 0}, {3, 0.8f, 0}, {4, 0.6f, 0}};
  EXPECT_FALSE(CutToRequest(hits, 2, std::nullopt, index::Metric::kInnerProduct).has_value());
  EXPECT_TRUE(CutToRequest(hits, 1, std::nullopt, index::Metric::kInnerProduct).has_value());
  EXPECT_TRUE(CutToRequest(hits, 3, std::nullopt, index::Metric::kInnerProduct).has_value());
}

// How a finished call hands over and wakes its requests (BatchingOptions::next_call_first and
// direct_wakeups): no answer, deadline or failure may depend on it.
struct WakeMode {
  const char* name;
  bool next_call_first;
  bool direct_wakeups;
};
constexpr WakeMode kWakeModes[] = {{"RequestsFirst", false, false},
                                   {"NextCallFirst", true, false},
                                   {"DirectRequestsFirst", false, true},
                                   {"DirectNextCallFirst", true, true}};

// Test names and failure messages show the mode's name, not its bytes.
void PrintTo(const WakeMode& mode, std::ostream* os) { *os << mode.name; }

BatchingOptions InMode(BatchingOptions options, const WakeMode& mode) {
  options.next_call_first = mode.next_call_first;
  options.direct_wakeups = mode.direct_wakeups;
  return options;
}

// Both metrics, and every wake mode.
class BatchingTest : public ::testing::TestWithParam<std::tuple<index::Metric, WakeMode>> {
 protected:
  static index::Metric Metric() { return std::get<0>(GetParam()); }
  static BatchingOptions Options(int max_batch_queries, absl::Duration max_wait) {
    return InMode(BatchingOptions{max_batch_queries, max_wait}, std::get<1>(GetParam()));
  }
};

// Every wake mode, for the tests that need one metric only.
class BatchingModeTest : public ::testing::TestWithParam<WakeMode> {
 protected:
  static BatchingOptions Options(BatchingOptions options = {}) {
    return InMode(options, GetParam());
  }
};

TEST_P(BatchingTest, QueuedSearchesShareOneCallAndEachGetsItsAnswerAlone) {
  const Index& index = MakeIndex(Metric());
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(256, absl::ZeroDuration()), counters);
  // Different queries, k (1 .. 25, so that the shared k is 25), min_score on some, 1 or 2
  // queries per request (29 queued: FAISS's coarse quantizer takes its BLAS path from 20 on).
  // The first request holds the gate; the others queue behind it.
  std::vector<Request> requests;
  for (int i = 0; i < 20; ++i) {
    std::optional<float> min_score;
    if (i % 3 == 1) min_score = Metric() == index::Metric::kL2 ? 40.0f : 0.5f;
    requests.push_back(
        MakeRequest(index, i * 2, 1 + i % 2, 1 + (i * 7) % 25, min_score, 4, Metric()));
  }
  inner.Close();
  ConcurrentSearches searches(batching, requests);
  searches.Launch(0);
  inner.WaitEntered(1);
  for (size_t i = 1; i < requests.size(); ++i) searches.Launch(i);
  WaitQueued(batching, requests.size() - 1);
  inner.Open();
  searches.JoinAll();

  int queued_queries = 0;
  for (size_t i = 1; i < requests.size(); ++i) queued_queries += 1 + static_cast<int>(i) % 2;
  const auto calls = inner.calls();
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls[0].queries, 1);
  EXPECT_EQ(calls[1].queries, queued_queries) << "the queued requests share one call";
  for (size_t c = 2; c < calls.size(); ++c) {
    EXPECT_LT(calls[c].queries, queued_queries) << "only tie re-runs may follow";
  }
  EXPECT_EQ(counters.searches_coalesced.load(), requests.size() - 1);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(searches.answer(i).ok()) << searches.answer(i).status();
    EXPECT_EQ(searches.answer(i)->generation, "gen-1");
    ExpectSameHits(searches.answer(i)->hits, Alone(index, requests[i]),
                   "request " + std::to_string(i));
  }
}

// 96 searches at once, a thread each, with random queries (1 to 3), k, min_score, nprobe (2 or
// 6) and shard: each must get exactly what it gets alone.
void ExpectManyConcurrentClientsAnsweredAlone(const Index& index, index::Metric metric,
                                              ShardBackend& batching, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<Request> requests;
  for (int i = 0; i < 96; ++i) {
    std::optional<float> min_score;
    if (random() % 3 == 0) min_score = metric == index::Metric::kL2 ? 40.0f : 0.5f;
    requests.push_back(MakeRequest(index, static_cast<int>(random() % 38), 1 + random() % 3,
                                   1 + static_cast<int>(random() % 30), min_score,
                                   random() % 2 ? 2 : 6, metric, static_cast<int>(i % kShards)));
  }
  const auto answers = RunConcurrently(batching, requests);
  ExpectAnsweredAsAlone(index, requests, answers);
}

TEST_P(BatchingTest, ManyConcurrentClientsGetTheirAnswersAlone) {
  const Index& index = MakeIndex(Metric());
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(8, absl::ZeroDuration()), counters);
  ExpectManyConcurrentClientsAnsweredAlone(index, Metric(), batching, 5);
  for (const auto& call : inner.calls()) {
    EXPECT_LE(call.queries, 8 + 2) << "a call holds at most the maximum batch (or one request)";
  }
}

TEST_P(BatchingTest, ManyConcurrentClientsWithSeveralCallsInFlightGetTheirAnswersAlone) {
  const Index& index = MakeIndex(Metric());
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingOptions options = Options(8, absl::ZeroDuration());
  options.calls_in_flight = 3;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                options, counters);
  ExpectManyConcurrentClientsAnsweredAlone(index, Metric(), batching, 7);
  for (const auto& call : inner.calls()) {
    EXPECT_LE(call.queries, 8 + 2) << "a call holds at most the maximum batch (or one request)";
  }
  EXPECT_EQ(batching.queued(), 0u);
}

INSTANTIATE_TEST_SUITE_P(MetricsAndWakeModes, BatchingTest,
                         ::testing::Combine(::testing::Values(index::Metric::kInnerProduct,
                                                              index::Metric::kL2),
                                            ::testing::ValuesIn(kWakeModes)),
                         [](const auto& info) {
                           return index::MetricName(std::get<0>(info.param)) + "_" +
                                  std::get<1>(info.param).name;
                         });
INSTANTIATE_TEST_SUITE_P(WakeModes, BatchingModeTest, ::testing::ValuesIn(kWakeModes),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_P(BatchingModeTest, DifferentNprobeNeverShareACall) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(), counters);
  std::vector<Request> requests;
  for (int i = 0; i < 8; ++i) {
    requests.push_back(
        MakeRequest(index, i, 1, 10, std::nullopt, i % 2 ? 2 : 6, index::Metric::kInnerProduct));
  }
  inner.Close();
  ConcurrentSearches searches(batching, requests);
  searches.Launch(0);
  searches.Launch(1);
  inner.WaitEntered(2);  // one call per nprobe holds the gate
  for (size_t i = 2; i < requests.size(); ++i) searches.Launch(i);
  WaitQueued(batching, requests.size() - 2);
  inner.Open();
  searches.JoinAll();
  const auto calls = inner.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[2].queries, 3);
  EXPECT_EQ(calls[3].queries, 3);
  EXPECT_NE(calls[2].nprobe, calls[3].nprobe);
  ExpectAnsweredAsAlone(index, requests, searches.answers());
}

TEST_P(BatchingModeTest, TheMaximumBatchSplitsTheQueueInArrivalOrder) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options({4, absl::ZeroDuration()}), counters);
  // After the gate holder: 3 single queries, one request of 6 (over the maximum: alone), 2
  // single queries. Arrival order is kept: [3 singles] [the 6] [2 singles].
  const std::vector<int> sizes = {1, 1, 1, 1, 6, 1, 1};
  std::vector<Request> requests;
  for (size_t i = 0; i < sizes.size(); ++i) {
    requests.push_back(MakeRequest(index, static_cast<int>(i) * 3, sizes[i], 10, std::nullopt, 4,
                                   index::Metric::kInnerProduct));
  }
  inner.Close();
  ConcurrentSearches searches(batching, requests);
  searches.Launch(0);
  inner.WaitEntered(1);
  for (size_t i = 1; i < requests.size(); ++i) {  // one at a time, to fix the arrival order
    searches.Launch(i);
    WaitQueued(batching, i);
  }
  inner.Open();
  searches.JoinAll();
  const auto calls = inner.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].queries, 1);
  EXPECT_EQ(calls[1].queries, 3);
  EXPECT_EQ(calls[2].queries, 6);
  EXPECT_EQ(calls[3].queries, 2);
  ExpectAnsweredAsAlone(index, requests, searches.answers());
}

TEST_P(BatchingModeTest, ScoreTiesAtTheCutAreAnsweredExactlyByARunAlone) {
  // Three copies of every vector: identical codes, identical scores, scanned highest id first.
  const Index& index = MakeIndex(index::Metric::kInnerProduct, 3);
  std::vector<Request> requests;
  for (int i = 0; i < 12; ++i) {
    requests.push_back(
        MakeRequest(index, i, 1, 1 + i % 5, std::nullopt, 4, index::Metric::kInnerProduct));
  }
  requests.push_back(MakeRequest(index, 12, 1, 30, std::nullopt, 4, index::Metric::kInnerProduct));
  // Cutting the k = 30 answer naively would be wrong for some request: FAISS alone keeps the
  // tied hit it scanned first, not the lowest id. That is what the run alone is for.
  int naive_differs = 0;
  for (size_t i = 0; i + 1 < requests.size(); ++i) {
    Request wide = requests[i];
    wide.query.params.k = 30;
    const auto alone = Alone(index, requests[i]);
    const auto wide_hits = Alone(index, wide);
    index::HitList naive(
        wide_hits[0].begin(),
        wide_hits[0].begin() + std::min<size_t>(wide_hits[0].size(), requests[i].query.params.k));
    bool same = naive.size() == alone[0].size();
    for (size_t r = 0; same && r < naive.size(); ++r) same = naive[r].id == alone[0][r].id;
    naive_differs += same ? 0 : 1;
  }
  ASSERT_GT(naive_differs, 0) << "the data must put a score tie at some request's cut";

  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(), counters);
  inner.Close();
  ConcurrentSearches searches(batching, requests);
  searches.Launch(0);
  inner.WaitEntered(1);
  for (size_t i = 1; i < requests.size(); ++i) searches.Launch(i);
  WaitQueued(batching, requests.size() - 1);
  inner.Open();
  searches.JoinAll();
  EXPECT_GT(inner.calls().size(), 2u) << "some request re-ran alone";
  ExpectAnsweredAsAlone(index, requests, searches.answers());
}

TEST_P(BatchingModeTest, ADeadlinePassingInTheQueueFailsOnlyThatRequest) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(), counters);
  std::vector<Request> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(MakeRequest(index, i, 1, 10, std::nullopt, 4, index::Metric::kInnerProduct));
  }
  // Already past: refused before anything runs.
  requests[0].query.queries = requests[0].vectors;
  EXPECT_EQ(batching.Search(requests[0].query, absl::Now() - absl::Seconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(inner.calls().empty());

  inner.Close();
  ConcurrentSearches searches(batching, requests);
  searches.Launch(0, absl::InfiniteFuture());
  inner.WaitEntered(1);
  searches.Launch(1, absl::InfiniteFuture());
  WaitQueued(batching, 1);
  searches.Launch(2, absl::Now() + absl::Milliseconds(50));  // the gate stays shut until it gave up
  searches.Launch(3, absl::InfiniteFuture());
  searches.Join(2);
  EXPECT_EQ(searches.answer(2).status().code(), absl::StatusCode::kDeadlineExceeded);
  inner.Open();
  searches.JoinAll();
  ExpectAnsweredAsAlone(index, requests, searches.answers(), {0, 1, 3});
  EXPECT_EQ(batching.queued(), 0u);
}

TEST_P(BatchingModeTest, AFailedCallFailsEveryRequestInItAndTheShardKeepsServing) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  for (const bool throws : {false, true}) {
    SCOPED_TRACE(throws ? "inner backend throws" : "inner backend fails");
    ShardCounters counters;
    BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                  Options(), counters);
    std::vector<Request> requests;
    for (int i = 0; i < 5; ++i) {
      requests.push_back(
          MakeRequest(index, i, 1, 10, std::nullopt, 4, index::Metric::kInnerProduct));
    }
    inner.Reset();
    inner.Close();
    ConcurrentSearches searches(batching, requests);
    searches.Launch(0);
    inner.WaitEntered(1);
    for (size_t i = 1; i < requests.size(); ++i) searches.Launch(i);
    WaitQueued(batching, requests.size() - 1);
    if (throws) {
      inner.throw_ = true;
    } else {
      inner.fail_with_ = absl::UnavailableError("disk on fire (injected)");
    }
    inner.Open();
    searches.JoinAll();
    ASSERT_EQ(inner.calls().size(), 2u);
    for (const auto& answer : searches.answers()) {
      EXPECT_EQ(answer.status().code(),
                throws ? absl::StatusCode::kInternal : absl::StatusCode::kUnavailable);
    }
    inner.fail_with_.reset();
    inner.throw_ = false;
    requests[0].query.queries = requests[0].vectors;
    auto after = batching.Search(requests[0].query, absl::InfiniteFuture());
    ASSERT_TRUE(after.ok()) << after.status();
    ExpectSameHits(after->hits, Alone(index, requests[0]), "after the failure");
  }
}

TEST_P(BatchingModeTest, ABoundedWaitLetsABatchFillBeforeTheFirstCall) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  // A wait long enough never to end in this test: the call starts when the batch is full.
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options({3, absl::Hours(1)}), counters);
  std::vector<Request> requests;
  for (int i = 0; i < 3; ++i) {
    requests.push_back(
        MakeRequest(index, i, 1, 5 + i, std::nullopt, 4, index::Metric::kInnerProduct));
  }
  const auto answers = RunConcurrently(batching, requests);
  const auto calls = inner.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].queries, 3);
  ExpectAnsweredAsAlone(index, requests, answers);
}

TEST_P(BatchingModeTest, ABoundedWaitNeverCostsARequestItsDeadline) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  // The wait to fill up (an hour) ends after the request's deadline: the request goes at once
  // instead of waiting for a batch until its deadline passes.
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options({100, absl::Hours(1)}), counters);
  Request r = MakeRequest(index, 0, 1, 10, std::nullopt, 4, index::Metric::kInnerProduct);
  r.query.queries = r.vectors;
  auto answer = batching.Search(r.query, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(answer.ok()) << answer.status();
  ExpectSameHits(answer->hits, Alone(index, r), "lone request");
  EXPECT_EQ(inner.calls().size(), 1u);
}

// calls_in_flight > 1 (a GPU shard with as many copies): that many calls of one shard run at
// once, the next searches queue behind them and share the next free call.
TEST_P(BatchingModeTest, UpToCallsInFlightCallsOfOneShardRunAtOnce) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingOptions options;
  options.calls_in_flight = 2;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(options), counters);
  std::vector<Request> requests;
  for (int i = 0; i < 8; ++i) {
    requests.push_back(
        MakeRequest(index, i * 2, 1 + i % 2, 3 + i, std::nullopt, 4, index::Metric::kInnerProduct));
  }
  inner.Close();
  ConcurrentSearches searches(batching, requests);
  // The first two searches each start a call at once; the six after them queue.
  searches.Launch(0);
  inner.WaitEntered(1);
  searches.Launch(1);
  inner.WaitEntered(2);
  for (size_t i = 2; i < requests.size(); ++i) searches.Launch(i);
  WaitQueued(batching, requests.size() - 2);
  EXPECT_EQ(inner.calls().size(), 2u) << "no third call while two run";
  inner.Open();
  searches.JoinAll();

  const auto calls = inner.calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[0].queries, 1);
  EXPECT_EQ(calls[1].queries, 2);
  int queued_queries = 0;
  for (size_t i = 2; i < requests.size(); ++i) queued_queries += 1 + static_cast<int>(i) % 2;
  EXPECT_EQ(calls[2].queries, queued_queries) << "the queued searches share the next call";
  for (size_t c = 3; c < calls.size(); ++c) {
    EXPECT_LT(calls[c].queries, queued_queries) << "only tie re-runs may follow";
  }
  EXPECT_EQ(inner.most_in_call(), 2);
  ExpectAnsweredAsAlone(index, requests, searches.answers());
  EXPECT_EQ(batching.queued(), 0u);
}

// The search leading the next call while every call is taken can still leave at its deadline;
// the lead passes on, and the searches behind it are answered once a call is free.
TEST_P(BatchingModeTest, ALeaderWaitingForAFreeCallLeavesAtItsDeadline) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingOptions options;
  options.calls_in_flight = 2;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                Options(options), counters);
  std::vector<Request> requests;
  for (int i = 0; i < 5; ++i) {
    requests.push_back(MakeRequest(index, i, 1, 10, std::nullopt, 4, index::Metric::kInnerProduct));
  }
  inner.Close();
  ConcurrentSearches searches(batching, requests);
  searches.Launch(0, absl::InfiniteFuture());
  searches.Launch(1, absl::InfiniteFuture());
  inner.WaitEntered(2);
  searches.Launch(2, absl::Now() + absl::Milliseconds(200));  // the leader of the next call
  WaitQueued(batching, 1);
  // Queued behind it (unless a very slow machine starts them only after it left, when the
  // first of them leads instead: the outcome below is the same).
  searches.Launch(3, absl::InfiniteFuture());
  searches.Launch(4, absl::InfiniteFuture());
  searches.Join(2);  // its deadline passes while both calls are held
  EXPECT_EQ(searches.answer(2).status().code(), absl::StatusCode::kDeadlineExceeded);
  WaitQueued(batching, 2);
  inner.Open();
  searches.JoinAll();
  ExpectAnsweredAsAlone(index, requests, searches.answers(), {0, 1, 3, 4});
  const auto calls = inner.calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[2].queries, 2) << "the two left behind share a call";
  EXPECT_EQ(inner.most_in_call(), 2);
}

TEST(Batching, MalformedSearchesGoStraightToTheInnerBackend) {
  const Index& index = MakeIndex(index::Metric::kInnerProduct);
  IndexBackend inner(*index.index);
  ShardCounters counters;
  BatchingShardBackend batching(std::shared_ptr<ShardBackend>(&inner, [](ShardBackend*) {}),
                                BatchingOptions{}, counters);
  Request r = MakeRequest(index, 0, 1, 0, std::nullopt, 4, index::Metric::kInnerProduct);
  r.query.queries = r.vectors;
  EXPECT_EQ(batching.Search(r.query, absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(counters.searches_coalesced.load(), 0u);
}

TEST(BatchingConfig, IsOffUnlessConfiguredAndRoundTrips) {
  auto parsed = ParseConfig("{}", "/data");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->batching.enabled);
  EXPECT_EQ(ConfigToJson(*parsed).find("batching"), std::string::npos);

  parsed = ParseConfig(R"({"batching": {"max_batch_queries": 64, "max_wait_us": 200}})", "/data");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->batching.enabled);
  EXPECT_EQ(parsed->batching.max_batch_queries, 64);
  EXPECT_EQ(parsed->batching.max_wait_us, 200);
  EXPECT_FALSE(parsed->batching.next_call_first);
  EXPECT_FALSE(parsed->batching.direct_wakeups);
  auto again = ParseConfig(ConfigToJson(*parsed), "/data");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ConfigToJson(*again), ConfigToJson(*parsed));

  // The wake-mode switches: true is read and written back; anything but a boolean is refused.
  for (const auto& [key, field] : {std::pair{"next_call_first", &BatchingConfig::next_call_first},
                                   std::pair{"direct_wakeups", &BatchingConfig::direct_wakeups}}) {
    SCOPED_TRACE(key);
    const auto with = [key = std::string(key)](const std::string& value) {
      return ParseConfig(R"({"batching": {")" + key + R"(": )" + value + "}}", "/data");
    };
    parsed = with("true");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE((*parsed).batching.*field);
    again = ParseConfig(ConfigToJson(*parsed), "/data");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE((*again).batching.*field);
    EXPECT_FALSE(with("1").ok());
    EXPECT_FALSE(with(R"("yes")").ok());
  }

  parsed = ParseConfig(R"({"batching": {"enabled": false, "max_wait_us": 200}})", "/data");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->batching.enabled);
}

TEST(BatchingConfig, RefusesAnUnboundedWaitOrAnEmptyBatch) {
  ServerConfig config;
  config.plaintext = true;
  config.listen = "127.0.0.1:0";
  config.batching.enabled = true;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.batching.max_wait_us = 2'000'000;
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  config.batching.max_wait_us = -1;
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  config.batching.max_wait_us = 0;
  config.batching.max_batch_queries = 0;
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace probity::service
