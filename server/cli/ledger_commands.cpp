// `probity ledger ...`: the auditor's tools. They read a ledger directory directly (no server,
// no signing key except for `checkpoint`), so an oversight body can run them on a copy.
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "command_registry.h"
#include "probity/common/atomic_file.h"
#include "probity/common/file_read.h"
#include "probity/common/owner_only_file.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/export.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/reader.h"
#include "probity/ledger/verifier_key.h"
#include "probity/ledger/verify.h"
#include "probity/report/report.h"

namespace probity::cli {
namespace {

using ledger::Hash;

// Exits with the error when `path` cannot be read.
std::string ReadFileOrExit(const std::string& path) {
  absl::StatusOr<std::string> contents = common::ReadFileToString(path);
  ExitOnError(contents.status());
  return *std::move(contents);
}

// --key of verify and report: a verifier key, a file holding one, or a PEM key file named by
// --origin (ledger::LoadNoteVerifier).
ledger::NoteVerifier LoadVerifierOrExit(const std::string& key, const std::string& origin) {
  absl::StatusOr<ledger::NoteVerifier> verifier = ledger::LoadNoteVerifier(key, origin);
  ExitOnError(verifier.status());
  return *std::move(verifier);
}

std::string Encode(const Hash& hash, const std::string& encoding) {
  if (encoding == "base64") {
    return absl::Base64Escape(
        absl::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
  }
  return ledger::ToHex(hash);
}

std::string JsonList(const std::vector<Hash>& hashes, const std::string& encoding) {
  std::string out = "[";
  for (size_t i = 0; i < hashes.size(); ++i) {
    out += (i ? ",\"" : "\"") + Encode(hashes[i], encoding) + "\"";
  }
  return out + "]";
}

// A time bound: unix seconds or RFC 3339 ("2026-11-25T10:00:00Z"), as unix microseconds.
std::optional<int64_t> ParseTimeBound(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoll(text) * 1000000;
  }
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    ExitOnError(absl::InvalidArgumentError("bad time '" + text + "': " + error));
  }
  return absl::ToUnixMicros(time);
}

struct EntryFilter {
  std::string dir;
  std::string warrant;
  std::string case_number;
  std::string since;
  std::string until;
  uint64_t from = 0;
  uint64_t limit = 0;  // 0: no limit
  std::string out;
  void AddOptions(CLI::App* command) {
    command->add_option("--dir", dir, "ledger directory")
        ->required()
        ->check(CLI::ExistingDirectory);
    command->add_option("--warrant", warrant, "only entries of this warrant id (jti)");
    command->add_option("--case", case_number, "only entries of this case number");
    command->add_option("--since", since, "only entries at or after (unix seconds or RFC 3339)");
    command->add_option("--until", until, "only entries before (unix seconds or RFC 3339)");
    command->add_option("--from", from, "first entry index to read");
    command->add_option("--limit", limit, "stop after this many matching entries");
  }
};

// Writes the matching entries as JSON lines (ledger/export.h); kStoredBytes adds the stored
// bytes and leaf hash so that an outside tool can re-hash exactly what the tree commits to.
void PrintEntries(const EntryFilter& filter, ledger::ExportDetail detail, std::ostream& out) {
  ledger::ExportFilter export_filter;
  export_filter.warrant_id = filter.warrant;
  export_filter.case_number = filter.case_number;
  export_filter.since_unix_micros = ParseTimeBound(filter.since);
  export_filter.until_unix_micros = ParseTimeBound(filter.until);
  export_filter.from = filter.from;
  export_filter.limit = filter.limit;
  ExitOnError(ledger::ExportEntries(filter.dir, export_filter, detail, out));
}

void AddKeygen(CLI::App& group) {
  struct Args {
    std::string out, name, verifier_out;
  };
  auto args = std::make_shared<Args>();
  auto* command = group.add_subcommand(
      "keygen", "make an Ed25519 checkpoint signing key (PEM) and print its verifier key");
  command->add_option("--out", args->out, "private key file to create (PKCS#8 PEM)")->required();
  command->add_option("--name", args->name, "key name: the ledger's origin line")->required();
  command->add_option("--verifier-out", args->verifier_out, "also write the verifier key here");
  command->callback([args] {
    if (std::filesystem::exists(args->out)) {
      ExitOnError(absl::AlreadyExistsError(args->out + " exists; not overwriting a key"));
    }
    if (!ledger::IsValidKeyName(args->name)) {
      ExitOnError(absl::InvalidArgumentError("key name must be non-empty, without spaces or '+'"));
    }
    ExitOnError(ledger::GenerateSigningKey(args->out));
    auto signer = ledger::NoteSigner::Load(args->out, args->name);
    ExitOnError(signer.status());
    const std::string verifier_key = (*signer)->VerifierKey();
    if (!args->verifier_out.empty()) {
      // Public material: the umask decides its mode. A failed write fails the command before
      // the key is printed and takes back the key just made, so that the same command can be
      // run again once the path is right.
      absl::Status written = common::WriteFileAtomically(args->verifier_out, verifier_key + "\n",
                                                         common::FileMode::kUmaskDefault);
      if (!written.ok()) {
        std::error_code ignored;
        std::filesystem::remove(args->out, ignored);
        ExitOnError(written);
      }
    }
    std::cout << verifier_key << "\n";
  });
}

void AddVerify(CLI::App& group) {
  struct Args {
    std::string dir, key, origin;
    std::vector<std::string> checkpoints;
  };
  auto args = std::make_shared<Args>();
  auto* command = group.add_subcommand(
      "verify",
      "re-hash every entry, rebuild the tree, check the stored hashes, every commit marker "
      "(signatures too with --key), records after the last commit marker, and every given "
      "signed checkpoint (signature, root, consistency); exits 1 and names the first bad entry "
      "on any problem");
  command->add_option("--dir", args->dir, "ledger directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_option("--checkpoint", args->checkpoints, "signed checkpoint file (repeatable)")
      ->check(CLI::ExistingFile);
  command->add_option("--key", args->key,
                      "verifier key, a file holding it, or a PEM public key file (with --origin)");
  command->add_option("--origin", args->origin, "expected checkpoint origin");
  command->callback([args] {
    ledger::VerifyOptions options;
    options.dir = args->dir;
    options.origin = args->origin;
    for (const auto& file : args->checkpoints) {
      options.signed_checkpoints.push_back(ReadFileOrExit(file));
    }
    if (!args->key.empty()) options.verifier = LoadVerifierOrExit(args->key, args->origin);
    auto report = ledger::VerifyLedger(options);
    ExitOnError(report.status());
    std::cout << "entries: " << report->entries << "\nroot: " << ledger::ToHex(report->root)
              << "\ncommit markers: " << report->commit_markers
              << "\ncheckpoints verified: " << report->checkpoints_verified.size() << " of "
              << options.signed_checkpoints.size() << "\n";
    for (const auto& note : report->notes) std::cout << "note: " << note << "\n";
    for (const auto& warning : report->warnings) std::cout << "WARNING: " << warning << "\n";
    for (const auto& problem : report->problems) std::cout << "PROBLEM: " << problem << "\n";
    if (report->first_bad_entry) {
      std::cout << "first bad entry: " << *report->first_bad_entry << "\n";
    }
    if (!report->ok()) throw CLI::RuntimeError(1);
    std::cout << "OK\n";
  });
}

void AddShowAndExport(CLI::App& group) {
  auto show = std::make_shared<EntryFilter>();
  auto* show_command =
      group.add_subcommand("show", "print entries as JSON lines ({\"index\", \"entry\"})");
  show->AddOptions(show_command);
  show_command->callback(
      [show] { PrintEntries(*show, ledger::ExportDetail::kEntries, std::cout); });

  auto exported = std::make_shared<EntryFilter>();
  auto* export_command = group.add_subcommand(
      "export",
      "write entries as JSON lines with their stored bytes (base64) and leaf hash, for "
      "outside re-hashing");
  exported->AddOptions(export_command);
  export_command->add_option("--out", exported->out, "output file (default: standard output)");
  export_command->callback([exported] {
    if (exported->out.empty()) {
      PrintEntries(*exported, ledger::ExportDetail::kStoredBytes, std::cout);
      return;
    }
    // An export holds the ledger's contents: owner-only, and whole or not at all (a failed
    // export, or one that cannot be written, leaves no partial file behind).
    std::ostringstream entries;
    PrintEntries(*exported, ledger::ExportDetail::kStoredBytes, entries);
    ExitOnError(common::WriteOwnerOnlyFile(exported->out, entries.str()));
  });
}

void AddCheckpoint(CLI::App& group) {
  struct Args {
    std::string dir, signing_key, origin, out;
  };
  auto args = std::make_shared<Args>();
  auto* command = group.add_subcommand(
      "checkpoint",
      "verify the ledger, then print a signed C2SP checkpoint of it (refuses a damaged ledger)");
  command->add_option("--dir", args->dir, "ledger directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_option("--signing-key", args->signing_key, "Ed25519 private key PEM")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--origin", args->origin, "origin line and key name")->required();
  command->add_option("--out", args->out, "also write the checkpoint to this file");
  command->callback([args] {
    auto signer = ledger::NoteSigner::Load(args->signing_key, args->origin);
    ExitOnError(signer.status());
    auto verifier = ledger::NoteVerifier::FromVerifierKey((*signer)->VerifierKey());
    ExitOnError(verifier.status());
    // With the key, commit markers' signatures are checked too: a checkpoint is never signed
    // over records the server did not acknowledge.
    auto report = ledger::VerifyLedger({args->dir, {}, *verifier, args->origin});
    ExitOnError(report.status());
    if (!report->ok()) {
      ExitOnError(absl::DataLossError("not signing a damaged ledger: " + report->problems.front()));
    }
    auto note = (*signer)->Sign(
        ledger::FormatCheckpoint({args->origin, report->entries, report->root, {}}));
    ExitOnError(note.status());
    // Written before it is printed, so that a checkpoint that could not be kept is never shown
    // as if it had been.
    if (!args->out.empty()) ExitOnError(common::WriteOwnerOnlyFile(args->out, *note));
    std::cout << *note;
  });
}

void AddProve(CLI::App& group) {
  struct Args {
    std::string dir, encoding = "hex";
    uint64_t index = 0, size = 0, old_size = 0, new_size = 0;
  };
  auto args = std::make_shared<Args>();
  auto* prove = group.add_subcommand(
      "prove", "print RFC 6962 inclusion or consistency proofs as JSON for an outside verifier");
  prove->require_subcommand(1);
  prove->add_option("--dir", args->dir, "ledger directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  prove->add_option("--encoding", args->encoding, "hash encoding: hex or base64")
      ->check(CLI::IsMember({"hex", "base64"}));

  auto open_reader = [args] {
    auto reader = ledger::LedgerReader::Open(args->dir);
    ExitOnError(reader.status());
    return std::move(*reader);
  };

  auto* inclusion = prove->add_subcommand("inclusion", "proof that an entry is in the tree");
  inclusion->add_option("--index", args->index, "entry index")->required();
  inclusion->add_option("--size", args->size, "tree size (default: the whole ledger)");
  inclusion->callback([args, open_reader] {
    auto reader = open_reader();
    const uint64_t size = args->size ? args->size : reader->Size();
    auto proof = reader->InclusionProof(args->index, size);
    ExitOnError(proof.status());
    auto leaf = reader->LeafHash(args->index);
    ExitOnError(leaf.status());
    auto root = reader->RootAt(size);
    ExitOnError(root.status());
    std::cout << "{\"index\":" << args->index << ",\"tree_size\":" << size << ",\"leaf_hash\":\""
              << Encode(*leaf, args->encoding) << "\",\"root\":\"" << Encode(*root, args->encoding)
              << "\",\"proof\":" << JsonList(*proof, args->encoding) << "}\n";
  });

  auto* consistency =
      prove->add_subcommand("consistency", "proof that a smaller tree is a prefix of a larger");
  consistency->add_option("--old", args->old_size, "old tree size")->required();
  consistency->add_option("--new", args->new_size, "new tree size (default: the whole ledger)");
  consistency->callback([args, open_reader] {
    auto reader = open_reader();
    const uint64_t new_size = args->new_size ? args->new_size : reader->Size();
    auto proof = reader->ConsistencyProof(args->old_size, new_size);
    ExitOnError(proof.status());
    auto old_root = reader->RootAt(args->old_size);
    ExitOnError(old_root.status());
    auto new_root = reader->RootAt(new_size);
    ExitOnError(new_root.status());
    std::cout << "{\"old_size\":" << args->old_size << ",\"new_size\":" << new_size
              << ",\"old_root\":\"" << Encode(*old_root, args->encoding) << "\",\"new_root\":\""
              << Encode(*new_root, args->encoding)
              << "\",\"proof\":" << JsonList(*proof, args->encoding) << "}\n";
  });
}

void AddReport(CLI::App& group) {
  struct Args {
    std::string dir, key, origin, out, case_number, warrant, investigator, since, until;
    size_t rows = report::ReportLimits{}.rows_per_table;
    size_t max_cases = report::ReportLimits{}.max_cases;
  };
  auto args = std::make_shared<Args>();
  auto* command = group.add_subcommand(
      "report",
      "verify the ledger (refusing one that does not verify), then write one self-contained "
      "HTML oversight report: per case the warrants, searches over time, refusals by reason, "
      "candidates, incomplete coverage and reviews, the admin actions, the signed checkpoint "
      "and an inclusion proof for every entry shown");
  command->add_option("--dir", args->dir, "ledger directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  command
      ->add_option("--key", args->key,
                   "the log's verifier key, a file holding it, or a PEM public key file "
                   "(with --origin)")
      ->required();
  command->add_option("--origin", args->origin, "expected checkpoint origin");
  command->add_option("--out", args->out, "HTML file to write (owner-only)")->required();
  command->add_option("--case", args->case_number, "only this case number");
  command->add_option("--warrant", args->warrant, "only this warrant id (jti)");
  command->add_option("--investigator", args->investigator,
                      "only this investigator (warrant subject or TLS identity)");
  command->add_option("--since", args->since,
                      "only entries at or after (unix seconds or RFC 3339)");
  command->add_option("--until", args->until, "only entries before (unix seconds or RFC 3339)");
  command->add_option("--rows", args->rows, "first and last N rows of each table")
      ->check(CLI::Range(1, 1000));
  command->add_option("--max-cases", args->max_cases, "cases shown at most")
      ->check(CLI::Range(1, 1000));
  command->callback([args] {
    report::ReportOptions options;
    options.ledger_dir = args->dir;
    options.origin = args->origin;
    options.filter.case_number = args->case_number;
    options.filter.warrant_id = args->warrant;
    options.filter.investigator = args->investigator;
    options.filter.since_unix_micros = ParseTimeBound(args->since);
    options.filter.until_unix_micros = ParseTimeBound(args->until);
    options.limits.rows_per_table = args->rows;
    options.limits.max_cases = args->max_cases;
    const ledger::NoteVerifier verifier = LoadVerifierOrExit(args->key, args->origin);
    auto html = report::RenderReport(options, verifier);
    ExitOnError(html.status());
    // The report names who searched for whom: written owner-only, like the ledger itself.
    ExitOnError(common::WriteOwnerOnlyFile(args->out, *html));
    std::cout << "report written to " << args->out << "\n";
  });
}

void AddLedgerCommands(CLI::App& root) {
  auto* group = root.add_subcommand(
      "ledger", "audit the query ledger: verify, show, export, checkpoint, prove, report, keygen");
  group->require_subcommand(1);
  AddVerify(*group);
  AddShowAndExport(*group);
  AddCheckpoint(*group);
  AddProve(*group);
  AddReport(*group);
  AddKeygen(*group);
}

}  // namespace

PROBITY_REGISTER_COMMANDS("ledger", AddLedgerCommands);

}  // namespace probity::cli
