// probity serve (router + Search/Admin/Ledger; embedded shards or --shards), probity shard (a
// shard server) and probity query (the investigator's client).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "command_registry.h"
#include "probity/client/call_status.h"
#include "probity/client/search_client.h"
#include "probity/client/trimmed_file.h"
#include "probity/common/atomic_file.h"
#include "probity/common/file_read.h"
#include "probity/demo/demo.h"
#include "probity/index/embedding_io.h"
#include "probity/service/config.h"
#include "probity/service/server.h"
#include "probity/v1/search.grpc.pb.h"

namespace probity::cli {
namespace {

absl::Status WritePortFile(const std::string& path, int port) {
  if (path.empty()) return absl::OkStatus();
  // Atomic, so that readers (scripts waiting for the server) never see a half-written port.
  return common::WriteFileAtomically(path, absl::StrCat(port, "\n"),
                                     common::FileMode::kUmaskDefault);
}

struct ServeFlags {
  std::string config;
  bool demo = false;
  std::string data_dir = "demo-data";
  std::string listen;
  std::string shards;
  std::string port_file;
  int64_t demo_identities = 2000;  // 10000 images: enough to train 8-bit PQ
};

absl::Status RunServe(const ServeFlags& flags) {
  service::BlockTerminationSignals();
  std::string config_file = flags.config;
  std::optional<demo::DemoFiles> demo;
  if (flags.demo) {
    auto prepared = demo::PrepareDemo(std::filesystem::absolute(flags.data_dir),
                                      flags.listen.empty() ? "127.0.0.1:7443" : flags.listen,
                                      flags.demo_identities);
    if (!prepared.ok()) return prepared.status();
    demo = *prepared;
    if (config_file.empty()) config_file = demo->config_file.string();
  }
  if (config_file.empty()) {
    return absl::InvalidArgumentError("give --config FILE, or --demo to try Probity out");
  }
  auto config = service::LoadConfig(config_file);
  if (!config.ok()) return config.status();
  // Only the flag relaxes the TLS and fsync rules; the file cannot say so.
  config->demo = flags.demo;
  if (!flags.listen.empty()) config->listen = flags.listen;
  if (!flags.shards.empty()) {
    config->shard_servers = absl::StrSplit(flags.shards, ',', absl::SkipEmpty());
  }
  auto server = service::Server::StartRouter(*config);
  if (!server.ok()) return server.status();
  if (demo) {
    std::cout << "Probity demo is serving on 127.0.0.1:" << (*server)->port()
              << " (plaintext, demo keys in " << config->data_dir.string() << ").\n"
              << "Search the demo gallery with the demo warrant:\n\n"
              << "  probity query --server 127.0.0.1:" << (*server)->port() << " --collection "
              << demo->collection << " --warrant " << demo->warrant_file.string() << " --embedding "
              << demo->query_file.string() << " --row 0 --k 10\n\n"
              << "Stop with Ctrl-C (in-flight searches are drained).\n"
              << std::flush;
  }
  // Last: whoever waits for the port file (scripts, tests) may read the hint above once it
  // appears.
  if (auto status = WritePortFile(flags.port_file, (*server)->port()); !status.ok()) return status;
  service::ServeUntilTerminated(**server, absl::Seconds(config->drain_seconds));
  return absl::OkStatus();
}

absl::Status RunShard(const ServeFlags& flags) {
  service::BlockTerminationSignals();
  auto config = service::LoadConfig(flags.config);
  if (!config.ok()) return config.status();
  if (!flags.listen.empty()) config->listen = flags.listen;
  auto server = service::Server::StartShard(*config);
  if (!server.ok()) return server.status();
  if (auto status = WritePortFile(flags.port_file, (*server)->port()); !status.ok()) return status;
  service::ServeUntilTerminated(**server, absl::Seconds(config->drain_seconds));
  return absl::OkStatus();
}

struct QueryFlags {
  std::string server = "127.0.0.1:7443";
  std::string collection = "demo";
  std::string warrant_file;
  std::string embedding_file;
  int row = -1;  // -1: every row of the file is one query of the batch
  uint32_t k = 10;
  uint32_t nprobe = 0;
  std::optional<float> min_score;
  bool allow_partial = false;
  std::string justification;
  std::string ca_file, cert_file, key_file;
  bool json = false;
  int timeout_seconds = 30;
};

// What the investigator reads when a search fails: the code and message, the ledger entry that
// recorded it and, for a failed search, which shards did not answer and why.
absl::Status QueryFailure(const absl::Status& status) {
  std::string detail = absl::StrCat("search refused or failed (", static_cast<int>(status.code()),
                                    "): ", status.message());
  if (std::optional<uint64_t> entry = client::LedgerEntryOf(status)) {
    absl::StrAppend(&detail, " [ledger entry ", *entry, "]");
  }
  if (absl::StatusOr<v1::SearchFailure> failure = client::FailureOf(status); failure.ok()) {
    const v1::SearchCoverage& coverage = failure->coverage();
    absl::StrAppend(&detail, "\ncoverage: ", coverage.shards_answered(), "/",
                    coverage.shards_total(), " shards answered");
    for (const v1::ShardFailure& shard : coverage.failures()) {
      absl::StrAppend(&detail, "\n  shard ", shard.shard(), ": ", shard.code(), " (",
                      absl::StrJoin(shard.servers(), ", "), "): ", shard.message());
    }
  }
  return absl::Status(status.code(), detail);
}

absl::Status RunQuery(const QueryFlags& flags) {
  auto token = client::ReadTrimmedFile(flags.warrant_file);
  if (!token.ok()) return token.status();
  auto matrix = index::ReadFloatMatrix(flags.embedding_file);
  if (!matrix.ok()) return matrix.status();
  if (flags.row >= matrix->rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(flags.embedding_file, " has ", matrix->rows, " rows, no row ", flags.row));
  }
  v1::SearchRequest request;
  request.set_collection(flags.collection);
  request.set_k(flags.k);
  request.set_nprobe(flags.nprobe);
  if (flags.min_score) request.set_min_score(*flags.min_score);
  request.set_allow_partial(flags.allow_partial);
  request.set_justification(flags.justification);
  for (int64_t r = 0; r < matrix->rows; ++r) {
    if (flags.row >= 0 && r != flags.row) continue;
    const float* begin = matrix->data.data() + r * matrix->dim;
    request.add_queries()->mutable_values()->Add(begin, begin + matrix->dim);
  }
  auto search_client =
      client::SearchClient::Connect(flags.server, {flags.ca_file, flags.cert_file, flags.key_file});
  if (!search_client.ok()) return search_client.status();
  auto response = search_client->Search(request, *token, absl::Seconds(flags.timeout_seconds));
  if (!response.ok()) return QueryFailure(response.status());
  if (flags.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = false;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;  // id 0, score 0, shard 0 are data
    if (!google::protobuf::util::MessageToJsonString(*response, &json, options).ok()) {
      return absl::InternalError("cannot print the response as JSON");
    }
    std::cout << json << "\n";
    return absl::OkStatus();
  }
  for (int q = 0; q < response->results_size(); ++q) {
    std::cout << "query " << q << ": " << response->results(q).candidates_size()
              << " candidates (leads for human review, not identifications)\n";
    std::cout << "  rank  id                    score       shard\n";
    for (const v1::RankedCandidate& c : response->results(q).candidates()) {
      std::printf("  %4u  %-20lld  %-10.6f  %u\n", c.rank(), static_cast<long long>(c.id()),
                  c.score(), c.shard());
    }
  }
  std::fflush(stdout);
  std::cout << "coverage: " << response->coverage().shards_answered() << "/"
            << response->coverage().shards_total() << " shards"
            << (response->coverage().partial() ? " (PARTIAL)" : "") << "\n";
  std::cout << "index generation: " << response->index_generation() << " (" << response->metric()
            << ")\n";
  std::cout << "ledger entry: " << response->receipt().entry_index() << "\n";
  std::cout << "ledger verifier key: " << response->receipt().verifier_key() << "\n";
  std::cout << "signed checkpoint:\n" << response->receipt().signed_checkpoint();
  return absl::OkStatus();
}

void AddServeCommands(CLI::App& root) {
  auto serve_flags = std::make_shared<ServeFlags>();
  CLI::App* serve = root.add_subcommand(
      "serve",
      "Run the Probity service: warrant check, search, ledger; embedded shards by "
      "default, remote shard servers with --shards");
  serve->add_option("--config", serve_flags->config, "Configuration file (JSON)");
  serve->add_flag("--demo", serve_flags->demo,
                  "Create (first start) and serve a demo: synthetic gallery, test issuer key, "
                  "demo warrant; plaintext on loopback");
  serve->add_option("--data-dir", serve_flags->data_dir, "Data directory for --demo")
      ->capture_default_str();
  serve
      ->add_option("--demo-identities", serve_flags->demo_identities,
                   "Identities (5 images each) in the demo gallery, first start only")
      ->capture_default_str();
  serve->add_option("--listen", serve_flags->listen, "host:port (port 0 picks a free port)");
  serve->add_option("--shards", serve_flags->shards,
                    "Route to these shard servers (host:port,...) instead of local shards");
  serve->add_option("--port-file", serve_flags->port_file,
                    "Write the port actually listened on to this file");
  serve->callback([serve_flags] { ExitOnError(RunServe(*serve_flags)); });

  auto shard_flags = std::make_shared<ServeFlags>();
  CLI::App* shard = root.add_subcommand(
      "shard", "Run a shard server holding the shards named in its configuration");
  shard->add_option("--config", shard_flags->config, "Configuration file (JSON)")->required();
  shard->add_option("--listen", shard_flags->listen, "host:port (port 0 picks a free port)");
  shard->add_option("--port-file", shard_flags->port_file,
                    "Write the port actually listened on to this file");
  shard->callback([shard_flags] { ExitOnError(RunShard(*shard_flags)); });

  auto query_flags = std::make_shared<QueryFlags>();
  CLI::App* query = root.add_subcommand(
      "query",
      "Search a collection under a warrant; prints candidates, coverage and the "
      "ledger receipt");
  query->add_option("--server", query_flags->server, "host:port")->capture_default_str();
  query->add_option("--collection", query_flags->collection)->capture_default_str();
  query->add_option("--warrant", query_flags->warrant_file, "File holding the warrant (JWS)")
      ->required();
  query
      ->add_option("--embedding", query_flags->embedding_file,
                   "Query embedding(s): .fvecs, .fbin or .npy")
      ->required();
  query->add_option("--row", query_flags->row, "Only this row of the file (default: all rows)");
  query->add_option("--k", query_flags->k, "Candidates per query")->capture_default_str();
  query->add_option("--nprobe", query_flags->nprobe, "Lists probed (0: server default)");
  query->add_option("--min-score", query_flags->min_score, "Drop candidates below this score");
  query->add_flag("--allow-partial", query_flags->allow_partial,
                  "Accept answers from only some shards");
  query->add_option("--justification", query_flags->justification, "Recorded in the ledger");
  query->add_option("--ca", query_flags->ca_file, "CA certificate: use TLS");
  query->add_option("--cert", query_flags->cert_file, "Client certificate for mutual TLS");
  query->add_option("--key", query_flags->key_file, "Client key for mutual TLS");
  query->add_flag("--json", query_flags->json, "Print the response as one JSON line");
  query->add_option("--timeout", query_flags->timeout_seconds, "Seconds")->capture_default_str();
  query->callback([query_flags] { ExitOnError(RunQuery(*query_flags)); });
}

}  // namespace

PROBITY_REGISTER_COMMANDS("serve", AddServeCommands);

}  // namespace probity::cli
