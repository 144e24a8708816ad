// probity gen|build|train|build-shard|assemble|plan|search|eval: the operator's and
// researcher's offline tools for the index engine. gen writes a synthetic face-like gallery;
// build trains and fills a sharded collection and writes it as a generation directory, running
// on one machine the three steps that train, build-shard and assemble run separately on a
// cluster; plan says what a collection needs; search runs queries against a generation; eval
// measures recall and identity hit rate against exact ground truth for several nprobe values.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "command_registry.h"
#include "faiss_training_progress.h"
#include "probity/index/capacity_plan.h"
#include "probity/index/embedding_io.h"
#include "probity/index/evaluation.h"
#include "probity/index/generation.h"
#include "probity/index/generation_build.h"
#include "probity/index/private_files.h"
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
  // A synthetic gallery is still a gallery: its directory is owner-only like a real one's.
  if (absl::Status s = CreatePrivateDirectories(flags.out); !s.ok()) return s;
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
  int workers = 1;
  std::string work_dir;
  bool keep_work_dir = false;
};

// Flags shared by build and train: what to train on and how.
absl::StatusOr<TrainRequest> MakeTrainRequest(const BuildFlags& flags) {
  absl::StatusOr<Metric> metric = ParseMetric(flags.metric);
  if (!metric.ok()) return metric.status();
  if (flags.chunk <= 0 || flags.train_size <= 0) {
    return absl::InvalidArgumentError("--chunk and --train-size must be positive");
  }
  TrainRequest request;
  request.input = BuildInput{flags.input, flags.ids, flags.first_id, flags.normalize};
  request.factory = flags.spec;
  request.metric = *metric;
  request.num_shards = flags.shards;
  request.train_size = flags.train_size;
  request.chunk_rows = flags.chunk;
  request.train_options.faiss_verbose = true;
  request.train_options.gpu_device = flags.gpu;
  request.train_options.gpu_train_pq = flags.gpu_pq;
  request.around_training = [](int64_t sample_rows) {
    return std::make_shared<TrainingScope>(sample_rows);
  };
  return request;
}

absl::Status RunBuild(const BuildFlags& flags) {
  absl::StatusOr<TrainRequest> request = MakeTrainRequest(flags);
  if (!request.ok()) return request.status();
  BuildGenerationOptions options;
  options.train = *std::move(request);
  options.generation = flags.generation;
  options.output = flags.output;
  options.workers = flags.workers;
  options.work_dir = flags.work_dir;
  options.keep_work_dir = flags.keep_work_dir;
  options.steps.progress = &std::cerr;
  options.steps.chunk_rows = flags.chunk;
  absl::StatusOr<BuildSpec> build = BuildGeneration(options);
  if (!build.ok()) return build.status();
  std::cout << "generation " << flags.generation << ": " << build->input_rows << " vectors in "
            << build->num_shards << " shards, spec " << build->spec.factory << ", metric "
            << MetricName(build->spec.metric) << ", dim " << build->spec.dim << " -> "
            << flags.output << "\n";
  return absl::OkStatus();
}

// The flags that say what to train: build and train take the same ones.
void AddTrainFlags(CLI::App* app, BuildFlags* flags) {
  app->add_option("--input", flags->input, "vectors: .fvecs, .bvecs, .fbin, .u8bin or float32 .npy")
      ->required();
  app->add_option("--ids", flags->ids,
                  "64-bit ids, one per vector (.ibin/.ivecs int32 or int32/int64 .npy); "
                  "default: sequential from --first-id");
  app->add_option("--first-id", flags->first_id, "first sequential id")->capture_default_str();
  app->add_option("--spec", flags->spec, "FAISS factory spec, e.g. IVF4096,PQ64")
      ->capture_default_str();
  app->add_option("--metric", flags->metric, "ip (inner product on unit vectors) or l2")
      ->capture_default_str();
  app->add_option("--shards", flags->shards, "number of shards")->capture_default_str();
  app->add_option("--train-size", flags->train_size,
                  "training sample size (evenly strided over the input)")
      ->capture_default_str();
  app->add_option("--chunk", flags->chunk, "vectors read and added per step")
      ->capture_default_str();
  app->add_flag("--normalize", flags->normalize, "scale every input vector to unit length");
  app->add_option("--gpu", flags->gpu,
                  "train the coarse quantizer's k-means on this CUDA device (GPU build only); "
                  "makes 65,536 to 1,048,576 lists practical. The generation is the same plain "
                  "CPU FAISS files")
      ->check(CLI::NonNegativeNumber);
  auto* gpu_pq = app->add_flag("--gpu-pq", flags->gpu_pq,
                               "also train the PQ codebooks' k-means on the --gpu device");
  gpu_pq->needs(app->get_option("--gpu"));
}

void AddBuild(CLI::App& root) {
  auto flags = std::make_shared<BuildFlags>();
  CLI::App* build = root.add_subcommand(
      "build",
      "Train a sharded FAISS collection on an embedding file and write it as a generation "
      "directory: runs train, build-shard for every shard (--workers at a time) and assemble "
      "on this machine. Shards are built in a work directory and the generation is published "
      "by a rename, so an interrupted or failed build never damages an existing generation; "
      "rerun the same command to resume (finished shards are kept)");
  AddTrainFlags(build, flags.get());
  build->add_option("--output", flags->output, "generation directory to write")->required();
  build->add_option("--generation", flags->generation, "generation number for the manifest")
      ->capture_default_str();
  build->add_option("--workers", flags->workers, "shards built at once (threads)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  build->add_option("--work-dir", flags->work_dir,
                    "where the trained index and finished shards wait (default: .NAME.build "
                    "beside --output)");
  build->add_flag("--keep-work-dir", flags->keep_work_dir,
                  "keep the work directory after a successful build");
  build->callback([flags] { ExitOnError(RunBuild(*flags)); });
}

// ------------------------------------------------------------------- train, build-shard, assemble

absl::Status RunTrain(const BuildFlags& flags) {
  absl::StatusOr<TrainRequest> request = MakeTrainRequest(flags);
  if (!request.ok()) return request.status();
  StepOptions steps;
  steps.progress = &std::cerr;
  steps.chunk_rows = flags.chunk;
  absl::StatusOr<BuildSpec> build = TrainGeneration(*request, flags.work_dir, steps);
  if (!build.ok()) return build.status();
  std::cout << "trained " << build->spec.factory << " (" << MetricName(build->spec.metric) << ", "
            << build->spec.dim << " dims) on " << build->train_rows << " of " << build->input_rows
            << " vectors for " << build->num_shards << " shards -> " << flags.work_dir
            << "/build.json (trained index SHA-256 " << build->trained_sha256 << ")\n";
  return absl::OkStatus();
}

void AddTrain(CLI::App& root) {
  auto flags = std::make_shared<BuildFlags>();
  CLI::App* train = root.add_subcommand(
      "train",
      "Cluster build, step 1: train the spec once on a sample of the input and write the "
      "trained, empty index and build.json to a work directory (shared by every step). A rerun "
      "with the same flags reuses it");
  AddTrainFlags(train, flags.get());
  train->add_option("--work-dir", flags->work_dir, "work directory")->required();
  train->callback([flags] { ExitOnError(RunTrain(*flags)); });
}

struct ShardStepFlags {
  std::string work_dir;
  int shard = -1;
  std::string input;
  std::string ids;
  int64_t chunk = 65536;
  int64_t generation = 1;
  std::string output;
};

absl::Status RunBuildShard(const ShardStepFlags& flags) {
  int shard = flags.shard;
  if (shard < 0) {
    // An Indexed Job gives each pod its index in JOB_COMPLETION_INDEX.
    const char* index = std::getenv("JOB_COMPLETION_INDEX");
    if (index == nullptr || !absl::SimpleAtoi(index, &shard) || shard < 0) {
      return absl::InvalidArgumentError(
          "give --shard, or run where JOB_COMPLETION_INDEX holds the shard number");
    }
  }
  StepOptions steps;
  steps.progress = &std::cerr;
  steps.chunk_rows = flags.chunk;
  steps.vectors = flags.input;
  steps.ids = flags.ids;
  absl::StatusOr<ShardBuildResult> result = BuildShard(flags.work_dir, shard, steps);
  if (!result.ok()) return result.status();
  std::cout << "shard " << shard << " of " << result->record.num_shards << ": "
            << result->record.count << " vectors, "
            << (result->reused ? "already built (verified, left untouched)" : "built") << ", "
            << result->record.file << " SHA-256 " << result->record.sha256 << "\n";
  return absl::OkStatus();
}

void AddBuildShard(CLI::App& root) {
  auto flags = std::make_shared<ShardStepFlags>();
  CLI::App* app = root.add_subcommand(
      "build-shard",
      "Cluster build, step 2: build shard i of the work directory's build on any machine. "
      "Streams the input in chunks and keeps the rows whose id belongs to shard i; memory is "
      "one chunk plus the shard's codes. A finished shard that verifies is left untouched, so "
      "a killed build is simply run again");
  app->add_option("--work-dir", flags->work_dir, "work directory written by train")->required();
  app->add_option("--shard", flags->shard, "shard number (default: $JOB_COMPLETION_INDEX)");
  app->add_option("--input", flags->input,
                  "the input vectors where this machine sees them (default: build.json's path)");
  app->add_option("--ids", flags->ids, "the ids file where this machine sees it");
  app->add_option("--chunk", flags->chunk, "vectors read per step")->capture_default_str();
  app->callback([flags] { ExitOnError(RunBuildShard(*flags)); });
}

absl::Status RunAssemble(const ShardStepFlags& flags) {
  StepOptions steps;
  steps.progress = &std::cerr;
  if (absl::Status s = AssembleGeneration(flags.work_dir, flags.generation, flags.output, steps);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<BuildSpec> build = ReadBuildSpec(flags.work_dir);
  if (!build.ok()) return build.status();
  std::cout << "generation " << flags.generation << ": " << build->input_rows << " vectors in "
            << build->num_shards << " shards, spec " << build->spec.factory << ", metric "
            << MetricName(build->spec.metric) << ", dim " << build->spec.dim << " -> "
            << flags.output << "\n";
  return absl::OkStatus();
}

void AddAssemble(CLI::App& root) {
  auto flags = std::make_shared<ShardStepFlags>();
  CLI::App* app = root.add_subcommand(
      "assemble",
      "Cluster build, step 3: check every shard against build.json (present, SHA-256, same "
      "trained index, counts adding up to the input) and publish the generation directory "
      "atomically");
  app->add_option("--work-dir", flags->work_dir, "work directory")->required();
  app->add_option("--output", flags->output, "generation directory to write")->required();
  app->add_option("--generation", flags->generation, "generation number for the manifest")
      ->capture_default_str();
  app->callback([flags] { ExitOnError(RunAssemble(*flags)); });
}

// --------------------------------------------------------------------------------------- plan

struct PlanFlags {
  PlanRequest request;
  bool json = false;
};

absl::Status RunPlan(const PlanFlags& flags) {
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(flags.request);
  if (!plan.ok()) return plan.status();
  std::cout << (flags.json ? FormatPlanJson(flags.request, *plan)
                           : FormatPlanText(flags.request, *plan));
  return absl::OkStatus();
}

void AddPlan(CLI::App& root) {
  auto flags = std::make_shared<PlanFlags>();
  PlanRequest& request = flags->request;
  CLI::App* app = root.add_subcommand(
      "plan",
      "Shards, GPUs, servers, host RAM, disk, build time and search throughput for a "
      "collection, from measured bytes per vector and rates (each figure names its basis)");
  app->add_option("--vectors", request.vectors, "number of vectors")->required();
  app->add_option("--dim", request.dim, "dimension")->required();
  app->add_option("--spec", request.factory,
                  "IVF<nlist>[_HNSW<M>],PQ<m> or IVF<nlist>[_HNSW<M>],Flat")
      ->required();
  app->add_option("--gpu-memory-gib", request.gpu_memory_gib, "memory of one GPU (GiB)")
      ->capture_default_str();
  app->add_option("--gpus-per-server", request.gpus_per_server, "GPUs in one server")
      ->capture_default_str();
  app->add_option("--host-ram-gib", request.host_ram_gib_per_server, "host RAM of one server (GiB)")
      ->capture_default_str();
  app->add_option("--gpu-headroom", request.gpu_headroom,
                  "share of each GPU left free for adds and fragmentation")
      ->capture_default_str();
  app->add_option("--gpu-copies-per-shard", request.gpu_copies_per_shard,
                  "copies of each shard on its GPU (the server's gpu.copies_per_shard): each "
                  "holds the whole shard and scratch of its own")
      ->capture_default_str();
  app->add_option("--build-cores", request.build_cores_per_shard, "CPU cores of each shard build")
      ->capture_default_str();
  app->add_option("--ledger-searches", request.ledger_searches,
                  "searches kept in the ledger over its retention")
      ->capture_default_str();
  app->add_option("--ledger-entry-bytes", request.ledger_entry_bytes,
                  "bytes of one search entry (assumed)")
      ->capture_default_str();
  app->add_option("--nprobe", request.nprobes, "nprobe values (8, 16, 32, 64, 128 measured)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_flag("--json", flags->json, "print JSON instead of text");
  app->callback([flags] { ExitOnError(RunPlan(*flags)); });
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
  AddTrain(root);
  AddBuildShard(root);
  AddAssemble(root);
  AddPlan(root);
  AddSearch(root);
  AddEval(root);
}

}  // namespace

PROBITY_REGISTER_COMMANDS("index", AddIndexCommands);

}  // namespace probity::cli
