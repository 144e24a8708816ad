// probity gen|build|search|eval: the operator's and researcher's offline tools for the index
// engine. gen writes a synthetic face-like gallery, build trains and fills a sharded collection
// and writes it as a generation directory, search runs queries against a generation, and eval
// measures recall and identity hit rate against exact ground truth for several nprobe values.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "command_registry.h"
#include "probity/index/embedding_io.h"
#include "probity/index/evaluation.h"
#include "probity/index/generation.h"
#include "probity/index/progress.h"
#include "probity/index/sharded_index.h"
#include "probity/index/synthetic.h"

namespace probity::cli {
namespace {

namespace fs = std::filesystem;
using namespace probity::index;

// ---------------------------------------------------------------------------------------- gen

struct GenFlags {
  std::string out;
  std::string format = "fbin";
  SyntheticOptions options;
};

absl::Status RunGen(const GenFlags& flags) {
  if (flags.format != "fbin" && flags.format != "fvecs" && flags.format != "npy") {
    return absl::InvalidArgumentError("--format must be fbin, fvecs or npy");
  }
  std::error_code error;
  fs::create_directories(flags.out, error);
  if (error) return absl::InternalError(absl::StrCat(flags.out, ": ", error.message()));
  std::cerr << "generating " << flags.options.identities << " identities x "
            << flags.options.images_per_identity << " images in " << flags.options.dim
            << " dimensions, " << flags.options.num_queries << " held-out queries, exact top-"
            << flags.options.ground_truth_k << "\n";
  absl::StatusOr<SyntheticGallery> data = GenerateSyntheticGallery(flags.options);
  if (!data.ok()) return data.status();
  const fs::path out(flags.out);
  const std::string ext = "." + flags.format;
  if (auto s = WriteFloatMatrix(out / ("gallery" + ext), data->dim, data->gallery); !s.ok())
    return s;
  if (auto s = WriteFloatMatrix(out / ("queries" + ext), data->dim, data->queries); !s.ok())
    return s;
  if (auto s = WriteIntMatrix(out / "gallery_labels.ibin", 1, data->gallery_labels); !s.ok()) {
    return s;
  }
  if (auto s = WriteIntMatrix(out / "query_labels.ibin", 1, data->query_labels); !s.ok()) return s;
  if (auto s = WriteIntMatrix(out / "groundtruth.ibin", data->ground_truth_k, data->ground_truth);
      !s.ok()) {
    return s;
  }
  std::cout << "wrote " << (out / ("gallery" + ext)).string() << " (" << data->gallery_labels.size()
            << " vectors, ids 0.." << data->gallery_labels.size() - 1 << "), "
            << (out / ("queries" + ext)).string() << ", gallery_labels.ibin, "
            << "query_labels.ibin, groundtruth.ibin\n";
  return absl::OkStatus();
}

void AddGen(CLI::App& root) {
  auto flags = std::make_shared<GenFlags>();
  CLI::App* gen = root.add_subcommand(
      "gen",
      "Write a synthetic face-like gallery, held-out queries, labels and exact ground truth");
  gen->add_option("--out", flags->out, "output directory")->required();
  gen->add_option("--identities", flags->options.identities, "number of identities")
      ->capture_default_str();
  gen->add_option("--images-per-identity", flags->options.images_per_identity,
                  "gallery images per identity")
      ->capture_default_str();
  gen->add_option("--queries", flags->options.num_queries,
                  "held-out query images, spread over the identities")
      ->capture_default_str();
  gen->add_option("--dim", flags->options.dim, "embedding dimension")->capture_default_str();
  gen->add_option("--intrinsic-dim", flags->options.intrinsic_dim,
                  "dimension of the subspace the identities live in")
      ->capture_default_str();
  gen->add_option("--ground-truth-k", flags->options.ground_truth_k,
                  "neighbours per query in groundtruth.ibin")
      ->capture_default_str();
  gen->add_option("--seed", flags->options.seed, "random seed (same seed, same files)")
      ->capture_default_str();
  gen->add_option("--format", flags->format, "vector file format: fbin, fvecs or npy")
      ->capture_default_str();
  gen->callback([flags] { ExitOnError(RunGen(*flags)); });
}

// -------------------------------------------------------------------------------------- build

struct BuildFlags {
  std::string input;
  std::string ids;
  int64_t first_id = 0;
  std::string spec = "IVF1024,PQ64";
  std::string metric = "ip";
  int shards = 1;
  std::string output;
  int64_t generation = 1;
  int64_t train_size = 100000;
  int64_t chunk = 65536;
  bool normalize = false;
  int gpu = -1;  // CUDA device for training; -1 trains on the CPU
  bool gpu_pq = false;
};

// FAISS 1.7.3 has no training callback, but its verbose log names every k-means iteration and
// every PQ slice. While training runs, stdout is redirected into a pipe and that log becomes a
// progress line on stderr: the current phase, iterations per second, and the time left for the
// phase (PQ slices all cost the same, so their ETA covers the whole codebook training).
class FaissTrainingProgress {
 public:
  FaissTrainingProgress() {
    std::fflush(stdout);
    int fds[2];
    if (::pipe(fds) != 0) return;
    saved_stdout_ = ::dup(STDOUT_FILENO);
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[1]);
    read_end_ = fds[0];
    start_ = phase_start_ = clustering_start_ = std::chrono::steady_clock::now();
    reader_ = std::thread([this] { Read(); });
  }
  ~FaissTrainingProgress() {
    if (saved_stdout_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_stdout_, STDOUT_FILENO);  // closes the pipe's last write end: reader sees EOF
    ::close(saved_stdout_);
    reader_.join();
    ::close(read_end_);
  }
  FaissTrainingProgress(const FaissTrainingProgress&) = delete;
  FaissTrainingProgress& operator=(const FaissTrainingProgress&) = delete;

 private:
  void Read() {
    std::string line;
    char buffer[4096];
    for (ssize_t got; (got = ::read(read_end_, buffer, sizeof(buffer))) > 0;) {
      for (ssize_t i = 0; i < got; ++i) {
        if (buffer[i] == '\n' || buffer[i] == '\r') {
          Parse(line);
          line.clear();
        } else {
          line += buffer[i];
        }
      }
    }
    std::cerr << "\n";
  }

  void Parse(const std::string& line) {
    const auto now = std::chrono::steady_clock::now();
    int a = 0, b = 0;
    long long points = 0;
    if (line.find("Training level-1 quantizer") != std::string::npos) {
      phase_ = "coarse quantizer k-means";
      slice_ = slices_ = 0;
      phase_start_ = now;
    } else if (std::sscanf(line.c_str(), "Training PQ slice %d/%d", &a, &b) == 2) {
      if (slices_ == 0) phase_start_ = now;
      phase_ = "PQ codebooks";
      slice_ = a;
      slices_ = b;
    } else if (std::sscanf(line.c_str(), "Clustering %lld points in %dD to %d clusters", &points,
                           &a, &b) == 3) {
      iterations_ = 0;
      const size_t at = line.find(" times, ");
      if (at != std::string::npos) iterations_ = std::atoi(line.c_str() + at + 8);
      iteration_ = 0;
      clustering_start_ = now;
    } else if (std::sscanf(line.c_str(), "  Iteration %d", &a) == 1) {
      iteration_ = a + 1;
      ++total_iterations_;
    } else {
      return;
    }
    if (now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = total_iterations_ / std::max(elapsed, 1e-9);
    double left = -1;
    if (slices_ > 0 && iterations_ > 0) {
      const double done = slice_ + static_cast<double>(iteration_) / iterations_;
      const double phase = std::chrono::duration<double>(now - phase_start_).count();
      if (done > 0) left = phase / done * (slices_ - done);
    } else if (iterations_ > 0 && iteration_ > 0) {
      const double clustering = std::chrono::duration<double>(now - clustering_start_).count();
      left = clustering / iteration_ * (iterations_ - iteration_);
    }
    std::string where = phase_.empty() ? std::string("preparing") : phase_;
    if (slices_ > 0) where += absl::StrFormat(" slice %d/%d", slice_ + 1, slices_);
    if (iterations_ > 0) where += absl::StrFormat(" iteration %d/%d", iteration_, iterations_);
    std::cerr << absl::StrFormat(
                     "\rtraining: %s, %.1f k-means iterations/s, elapsed %s, ETA %s\x1b[K", where,
                     rate, ProgressBar::FormatDuration(elapsed),
                     left < 0 ? std::string("--:--") : ProgressBar::FormatDuration(left))
              << std::flush;
  }

  int saved_stdout_ = -1;
  int read_end_ = -1;
  std::thread reader_;
  std::string phase_;
  int slice_ = 0, slices_ = 0, iteration_ = 0, iterations_ = 0;
  int64_t total_iterations_ = 0;
  std::chrono::steady_clock::time_point start_, phase_start_, clustering_start_, last_draw_;
};

absl::StatusOr<std::unique_ptr<MatrixReader>> OpenVectors(const std::string& path,
                                                          const BuildFlags& flags, Metric metric) {
  ReadOptions options;
  options.reject_zero_vectors = metric == Metric::kInnerProduct;
  options.normalize = flags.normalize;
  return MatrixReader::Open(path, options);
}

// An evenly strided sample, read in one streamed pass so memory stays at the sample's size.
absl::StatusOr<std::vector<float>> ReadTrainingSample(const BuildFlags& flags, Metric metric,
                                                      int64_t* dim_out, int64_t* rows_out) {
  absl::StatusOr<std::unique_ptr<MatrixReader>> reader = OpenVectors(flags.input, flags, metric);
  if (!reader.ok()) return reader.status();
  const int64_t rows = (*reader)->rows();
  const int dim = (*reader)->dim();
  *dim_out = dim;
  *rows_out = rows;
  const int64_t wanted = std::min(rows, flags.train_size);
  std::vector<float> sample;
  sample.reserve(wanted * dim);
  ProgressBar bar("reading training sample", rows, "vectors", std::cerr);
  std::vector<float> chunk;
  int64_t next_pick = 0;  // index into the sample
  for (int64_t first = 0; first < rows;) {
    chunk.clear();
    absl::StatusOr<int64_t> got = (*reader)->ReadFloats(flags.chunk, &chunk);
    if (!got.ok()) return got.status();
    for (int64_t r = 0; r < *got; ++r) {
      while (next_pick < wanted && next_pick * rows / wanted == first + r) {
        sample.insert(sample.end(), chunk.begin() + r * dim, chunk.begin() + (r + 1) * dim);
        ++next_pick;
      }
    }
    first += *got;
    bar.Set(first);
  }
  bar.Finish();
  return sample;
}

absl::Status RunBuild(const BuildFlags& flags) {
  absl::StatusOr<Metric> metric = ParseMetric(flags.metric);
  if (!metric.ok()) return metric.status();
  if (flags.chunk <= 0 || flags.train_size <= 0) {
    return absl::InvalidArgumentError("--chunk and --train-size must be positive");
  }
  int64_t dim = 0;
  int64_t rows = 0;
  absl::StatusOr<std::vector<float>> sample = ReadTrainingSample(flags, *metric, &dim, &rows);
  if (!sample.ok()) return sample.status();
  const CollectionSpec spec{flags.spec, *metric, static_cast<int>(dim)};

  const auto train_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<ShardedIndex>> index;
  {
    std::cerr << absl::StrFormat("training %s (%s, %d dims) on %d vectors%s\n", spec.factory,
                                 MetricName(spec.metric), spec.dim, sample->size() / dim,
                                 flags.gpu >= 0 ? absl::StrCat(" on GPU ", flags.gpu) : "");
    FaissTrainingProgress progress;
    TrainOptions options;
    options.faiss_verbose = true;
    options.gpu_device = flags.gpu;
    options.gpu_train_pq = flags.gpu_pq;
    index = ShardedIndex::Train(spec, *sample, flags.shards, options);
  }
  const double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
  if (!index.ok()) return index.status();
  std::cerr << absl::StrFormat("\rtrained on %d vectors in %s (%.0f vectors/s)\x1b[K\n",
                               sample->size() / dim, ProgressBar::FormatDuration(train_seconds),
                               (sample->size() / dim) / std::max(train_seconds, 1e-9));
  sample->clear();
  sample->shrink_to_fit();

  absl::StatusOr<std::unique_ptr<MatrixReader>> vectors = OpenVectors(flags.input, flags, *metric);
  if (!vectors.ok()) return vectors.status();
  std::unique_ptr<MatrixReader> ids;
  if (!flags.ids.empty()) {
    absl::StatusOr<std::unique_ptr<MatrixReader>> opened = MatrixReader::Open(flags.ids);
    if (!opened.ok()) return opened.status();
    ids = *std::move(opened);
    if (ids->dim() != 1 || ids->rows() != rows) {
      return absl::InvalidArgumentError(absl::StrCat(flags.ids, ": expected ", rows,
                                                     " ids in one column, found ", ids->rows(),
                                                     " rows of ", ids->dim()));
    }
  }
  {
    ProgressBar bar(absl::StrCat("adding to ", flags.shards, " shards"), rows, "vectors",
                    std::cerr);
    std::vector<float> chunk;
    std::vector<int64_t> chunk_ids;
    for (int64_t done = 0; done < rows;) {
      chunk.clear();
      chunk_ids.clear();
      absl::StatusOr<int64_t> got = (*vectors)->ReadFloats(flags.chunk, &chunk);
      if (!got.ok()) return got.status();
      if (ids) {
        absl::StatusOr<int64_t> got_ids = ids->ReadInts(*got, &chunk_ids);
        if (!got_ids.ok()) return got_ids.status();
      } else {
        for (int64_t r = 0; r < *got; ++r) chunk_ids.push_back(flags.first_id + done + r);
      }
      if (absl::Status s = (*index)->Add(chunk, chunk_ids); !s.ok()) return s;
      done += *got;
      bar.Set(done);
    }
  }
  std::cerr << "writing generation " << flags.generation << " to " << flags.output << "\n";
  if (absl::Status s = WriteGeneration(**index, flags.generation, flags.output); !s.ok()) return s;
  std::cout << "generation " << flags.generation << ": " << (*index)->TotalSize() << " vectors in "
            << flags.shards << " shards, spec " << spec.factory << ", metric "
            << MetricName(spec.metric) << ", dim " << spec.dim << " -> " << flags.output << "\n";
  return absl::OkStatus();
}

void AddBuild(CLI::App& root) {
  auto flags = std::make_shared<BuildFlags>();
  CLI::App* build = root.add_subcommand(
      "build",
      "Train a sharded FAISS collection on an embedding file and write it as a generation "
      "directory (written to a temporary directory and renamed, so an interrupted or failed "
      "build never damages an existing generation; rerun to restart)");
  build
      ->add_option("--input", flags->input,
                   "vectors: .fvecs, .bvecs, .fbin, .u8bin or float32 .npy")
      ->required();
  build->add_option("--ids", flags->ids,
                    "64-bit ids, one per vector (.ibin/.ivecs int32 or int32/int64 .npy); "
                    "default: sequential from --first-id");
  build->add_option("--first-id", flags->first_id, "first sequential id")->capture_default_str();
  build->add_option("--spec", flags->spec, "FAISS factory spec, e.g. IVF4096,PQ64")
      ->capture_default_str();
  build->add_option("--metric", flags->metric, "ip (inner product on unit vectors) or l2")
      ->capture_default_str();
  build->add_option("--shards", flags->shards, "number of shards")->capture_default_str();
  build->add_option("--output", flags->output, "generation directory to write")->required();
  build->add_option("--generation", flags->generation, "generation number for the manifest")
      ->capture_default_str();
  build
      ->add_option("--train-size", flags->train_size,
                   "training sample size (evenly strided over the input)")
      ->capture_default_str();
  build->add_option("--chunk", flags->chunk, "vectors read and added per step")
      ->capture_default_str();
  build->add_flag("--normalize", flags->normalize, "scale every input vector to unit length");
  build
      ->add_option("--gpu", flags->gpu,
                   "train the coarse quantizer's k-means on this CUDA device (GPU build only); "
                   "makes 65,536 to 1,048,576 lists practical. The generation is the same plain "
                   "CPU FAISS files")
      ->check(CLI::NonNegativeNumber);
  auto* gpu_pq = build->add_flag("--gpu-pq", flags->gpu_pq,
                                 "also train the PQ codebooks' k-means on the --gpu device");
  gpu_pq->needs(build->get_option("--gpu"));
  build->callback([flags] { ExitOnError(RunBuild(*flags)); });
}

// ------------------------------------------------------------------------------------- search

struct SearchFlags {
  std::string generation;
  std::string queries;
  int64_t first_row = 0;
  int64_t count = 1;
  int k = 10;
  int nprobe = 16;
  std::optional<float> min_score;
};

absl::Status RunSearch(const SearchFlags& flags) {
  absl::StatusOr<std::unique_ptr<ShardedIndex>> index = LoadGeneration(flags.generation);
  if (!index.ok()) return index.status();
  ReadOptions options;
  options.expected_dim = (*index)->spec().dim;
  absl::StatusOr<std::unique_ptr<MatrixReader>> reader = MatrixReader::Open(flags.queries, options);
  if (!reader.ok()) return reader.status();
  std::vector<float> queries;
  // Skip to the first requested row in chunks, so a large query file is not loaded whole.
  for (int64_t skipped = 0; skipped < flags.first_row;) {
    queries.clear();
    absl::StatusOr<int64_t> got =
        (*reader)->ReadFloats(std::min<int64_t>(65536, flags.first_row - skipped), &queries);
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    skipped += *got;
  }
  queries.clear();
  absl::StatusOr<int64_t> got = (*reader)->ReadFloats(flags.count, &queries);
  if (!got.ok()) return got.status();
  if (*got == 0) return absl::OutOfRangeError(absl::StrCat(flags.queries, ": no such row"));
  SearchParams params;
  params.k = flags.k;
  params.nprobe = flags.nprobe;
  params.min_score = flags.min_score;
  absl::StatusOr<std::vector<HitList>> hits = (*index)->Search(queries, params);
  if (!hits.ok()) return hits.status();
  std::cout << absl::StrFormat("%6s %5s %20s %12s %6s\n", "query", "rank", "id", "score", "shard");
  for (size_t q = 0; q < hits->size(); ++q) {
    for (size_t r = 0; r < (*hits)[q].size(); ++r) {
      const Hit& hit = (*hits)[q][r];
      std::cout << absl::StrFormat("%6d %5d %20d %12.6f %6d\n", flags.first_row + q, r + 1, hit.id,
                                   hit.score, hit.shard);
    }
  }
  return absl::OkStatus();
}

void AddSearch(CLI::App& root) {
  auto flags = std::make_shared<SearchFlags>();
  CLI::App* search = root.add_subcommand(
      "search",
      "Offline search of a generation directory (no warrant, no ledger: for operators and "
      "researchers on their own data); prints the candidate list");
  search->add_option("--generation", flags->generation, "generation directory")->required();
  search->add_option("--queries", flags->queries, "query vectors file")->required();
  search->add_option("--row", flags->first_row, "first query row")->capture_default_str();
  search->add_option("--count", flags->count, "number of query rows")->capture_default_str();
  search->add_option("--k", flags->k, "candidates per query")->capture_default_str();
  search->add_option("--nprobe", flags->nprobe, "inverted lists probed per query")
      ->capture_default_str();
  search->add_option("--min-score", flags->min_score,
                     "drop weaker hits (inner product: below; L2: farther than)");
  search->callback([flags] { ExitOnError(RunSearch(*flags)); });
}

// --------------------------------------------------------------------------------------- eval

struct EvalFlags {
  std::string generation;
  std::string queries;
  std::string groundtruth;
  std::string gallery_labels;
  std::string query_labels;
  int k = 10;
  std::vector<int> nprobes = {1, 4, 16, 64};
  std::string csv;
};

absl::Status RunEval(const EvalFlags& flags) {
  absl::StatusOr<std::unique_ptr<ShardedIndex>> index = LoadGeneration(flags.generation);
  if (!index.ok()) return index.status();
  ReadOptions options;
  options.expected_dim = (*index)->spec().dim;
  absl::StatusOr<FloatMatrix> queries = ReadFloatMatrix(flags.queries, options);
  if (!queries.ok()) return queries.status();
  absl::StatusOr<IntMatrix> truth = ReadIntMatrix(flags.groundtruth);
  if (!truth.ok()) return truth.status();
  if (truth->rows != queries->rows) {
    return absl::InvalidArgumentError(absl::StrCat(flags.groundtruth, " has ", truth->rows,
                                                   " rows for ", queries->rows, " queries"));
  }
  IntMatrix gallery_labels, query_labels;
  if (flags.gallery_labels.empty() != flags.query_labels.empty()) {
    return absl::InvalidArgumentError("give both --gallery-labels and --query-labels, or neither");
  }
  if (!flags.gallery_labels.empty()) {
    absl::StatusOr<IntMatrix> g = ReadIntMatrix(flags.gallery_labels);
    if (!g.ok()) return g.status();
    absl::StatusOr<IntMatrix> q = ReadIntMatrix(flags.query_labels);
    if (!q.ok()) return q.status();
    gallery_labels = *std::move(g);
    query_labels = *std::move(q);
  }
  EvalInput input;
  input.queries = queries->data;
  input.ground_truth = truth->data;
  input.truth_k = truth->dim;
  input.gallery_labels = gallery_labels.data;
  input.query_labels = query_labels.data;
  input.k = flags.k;
  input.nprobes = flags.nprobes;
  absl::StatusOr<std::vector<EvalRow>> rows = Evaluate(**index, input);
  if (!rows.ok()) return rows.status();
  std::cout << "collection " << (*index)->spec().factory << " ("
            << MetricName((*index)->spec().metric) << ", " << (*index)->TotalSize() << " vectors, "
            << (*index)->num_shards() << " shards), " << queries->rows << " queries, k=" << flags.k
            << "\n"
            << FormatEvalTable(*rows, flags.k);
  if (!flags.csv.empty()) {
    std::ofstream out(flags.csv);
    out << FormatEvalCsv(*rows, flags.k);
    out.close();
    if (!out) return absl::InternalError(absl::StrCat(flags.csv, ": write failed"));
  }
  return absl::OkStatus();
}

void AddEval(CLI::App& root) {
  auto flags = std::make_shared<EvalFlags>();
  CLI::App* eval = root.add_subcommand(
      "eval",
      "Recall@k against exact ground truth and identity hit rate at rank k, for each nprobe; "
      "prints a table and optionally writes CSV");
  eval->add_option("--generation", flags->generation, "generation directory")->required();
  eval->add_option("--queries", flags->queries, "query vectors file")->required();
  eval->add_option("--groundtruth", flags->groundtruth,
                   "exact neighbour ids per query (.ivecs/.ibin), at least k per row")
      ->required();
  eval->add_option("--gallery-labels", flags->gallery_labels,
                   "identity of each gallery id (row i = id i; .ibin/.ivecs)");
  eval->add_option("--query-labels", flags->query_labels, "identity of each query");
  eval->add_option("--k", flags->k, "rank cut-off")->capture_default_str();
  eval->add_option("--nprobe", flags->nprobes, "nprobe values, comma separated")
      ->delimiter(',')
      ->capture_default_str();
  eval->add_option("--csv", flags->csv, "write the table as CSV to this file");
  eval->callback([flags] { ExitOnError(RunEval(*flags)); });
}

void AddIndexCommands(CLI::App& root) {
  AddGen(root);
  AddBuild(root);
  AddSearch(root);
  AddEval(root);
}

}  // namespace

PROBITY_REGISTER_COMMANDS("index", AddIndexCommands);

}  // namespace probity::cli
