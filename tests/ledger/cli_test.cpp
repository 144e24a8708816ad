// `probity ledger ...` end to end: keygen, verify (clean and tampered), show/export filters,
// checkpoint, proofs that verify outside the tool, and the files export and checkpoint write
// (owner-only whatever the umask; nothing left behind when they cannot be written).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "common/scoped_umask.h"
#include "ledger_test_util.h"
#include "probity/common/file_read.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/merkle.h"

namespace probity::ledger {
namespace {

struct CliRun {
  int exit_code;
  std::string out;
};

std::filesystem::path BinaryDir() {
  const char* dir = std::getenv("PROBITY_BINARY_DIR");
  EXPECT_NE(dir, nullptr) << "the shared test main sets PROBITY_BINARY_DIR";
  return dir ? dir : ".";
}

CliRun Probity(const std::string& arguments) {
  const std::string command =
      (BinaryDir() / "server/cli/probity").string() + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, read);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::vector<Hash> HashesOf(const nlohmann::json& list) {
  std::vector<Hash> hashes;
  for (const auto& item : list) hashes.push_back(*HashFromHex(item.get<std::string>()));
  return hashes;
}

class LedgerCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_.path() / "log";
    const auto key = scratch_.path() / "key.pem";
    CliRun keygen = Probity("ledger keygen --out " + key.string() + " --name " + testing::kOrigin);
    ASSERT_EQ(keygen.exit_code, 0) << keygen.out;
    verifier_key_ = keygen.out.substr(0, keygen.out.find('\n'));
    ASSERT_TRUE(NoteVerifier::FromVerifierKey(verifier_key_).ok()) << keygen.out;
    EXPECT_NE(Probity("ledger keygen --out " + key.string() + " --name x").exit_code, 0)
        << "keygen must not overwrite a key";

    Options options;
    options.dir = dir_;
    options.origin = testing::kOrigin;
    options.signing_key = key;
    options.max_segment_bytes = 700;
    options.fsync = false;
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (uint64_t i = 0; i < 30; ++i) {
      ASSERT_TRUE((*ledger)->Append(testing::SampleEntry(i)).ok());
      if (i == 9) testing::WriteFile(scratch_.path() / "cp10", *(*ledger)->SignedCheckpoint());
    }
    testing::WriteFile(scratch_.path() / "cp30", *(*ledger)->SignedCheckpoint());
    root30_ = *(*ledger)->RootAt(30);
    root10_ = *(*ledger)->RootAt(10);
  }

  std::string VerifyArguments() const {
    return "ledger verify --dir " + dir_.string() + " --checkpoint " +
           (scratch_.path() / "cp10").string() + " --checkpoint " +
           (scratch_.path() / "cp30").string() + " --key '" + verifier_key_ + "'";
  }

  testing::ScratchDir scratch_;
  std::filesystem::path dir_;
  std::string verifier_key_;
  Hash root10_{}, root30_{};
};

TEST_F(LedgerCliTest, EverySubcommandHasHelp) {
  for (const char* command : {"verify", "show", "export", "checkpoint", "prove", "keygen",
                              "prove inclusion", "prove consistency"}) {
    CliRun help = Probity(std::string("ledger ") + command + " --help");
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_NE(help.out.find("Usage"), std::string::npos) << help.out;
  }
}

TEST_F(LedgerCliTest, VerifyPassesOnAnUntouchedLedger) {
  CliRun verify = Probity(VerifyArguments());
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_NE(verify.out.find("checkpoints verified: 2 of 2"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("root: " + ToHex(root30_)), std::string::npos) << verify.out;
  // The verifier key may also come from a file.
  testing::WriteFile(scratch_.path() / "vkey", verifier_key_ + "\n");
  CliRun from_file = Probity("ledger verify --dir " + dir_.string() + " --checkpoint " +
                             (scratch_.path() / "cp30").string() + " --key " +
                             (scratch_.path() / "vkey").string());
  EXPECT_EQ(from_file.exit_code, 0) << from_file.out;
  // Or from the public key as PEM, named by the origin.
  const auto public_pem = scratch_.path() / "public.pem";
  const std::string extract =
      "/usr/bin/python3 -c \"import sys; from cryptography.hazmat.primitives import "
      "serialization as s; k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None); "
      "open(sys.argv[2], 'wb').write(k.public_key().public_bytes(s.Encoding.PEM, "
      "s.PublicFormat.SubjectPublicKeyInfo))\" " +
      (scratch_.path() / "key.pem").string() + " " + public_pem.string();
  ASSERT_EQ(std::system(extract.c_str()), 0);
  CliRun from_pem = Probity("ledger verify --dir " + dir_.string() + " --checkpoint " +
                            (scratch_.path() / "cp30").string() + " --key " + public_pem.string() +
                            " --origin " + testing::kOrigin);
  EXPECT_EQ(from_pem.exit_code, 0) << from_pem.out;
  CliRun wrong_name = Probity("ledger verify --dir " + dir_.string() + " --checkpoint " +
                              (scratch_.path() / "cp30").string() + " --key " +
                              public_pem.string() + " --origin other.origin");
  EXPECT_EQ(wrong_name.exit_code, 1) << wrong_name.out;
}

TEST_F(LedgerCliTest, VerifyNamesTheFirstBadEntryAndFails) {
  const auto segment = testing::SegmentFiles(dir_)[2];
  const uint64_t first = std::stoull(segment.filename().string().substr(8, 20));
  std::string bytes = testing::ReadFile(segment);
  const auto records = testing::ParseRecords(bytes);
  bytes[records[1].offset + 12] ^= 0x40;
  testing::WriteFile(segment, bytes);
  CliRun verify = Probity(VerifyArguments());
  EXPECT_EQ(verify.exit_code, 1) << verify.out;
  EXPECT_NE(verify.out.find("first bad entry: " + std::to_string(first + 1) + "\n"),
            std::string::npos)
      << verify.out;
  EXPECT_NE(verify.out.find(segment.filename().string()), std::string::npos) << verify.out;
  EXPECT_NE(Probity("ledger checkpoint --dir " + dir_.string() + " --signing-key " +
                    (scratch_.path() / "key.pem").string() + " --origin " + testing::kOrigin)
                .exit_code,
            0)
      << "checkpoint must refuse a damaged ledger";
}

TEST_F(LedgerCliTest, VerifyReportsRecordsAfterTheLastCommitMarker) {
  // A well-formed entry with a valid CRC, appended while no server runs: never acknowledged.
  const auto segment = testing::SegmentFiles(dir_).back();
  testing::WriteFile(segment, testing::ReadFile(segment) +
                                  testing::EncodeRawRecord(
                                      testing::SampleEntry(99, "injected").SerializeAsString()));
  CliRun verify = Probity(VerifyArguments());
  // Not a failure of the log, which ends at the last marker, but said loudly.
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_NE(verify.out.find("WARNING: segment"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("after the last commit marker"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("entries: 30\n"), std::string::npos) << verify.out;
  // A checkpoint is never signed over records the server never acknowledged.
  CliRun checkpoint =
      Probity("ledger checkpoint --dir " + dir_.string() + " --signing-key " +
              (scratch_.path() / "key.pem").string() + " --origin " + testing::kOrigin);
  ASSERT_EQ(checkpoint.exit_code, 0) << checkpoint.out;
  auto opened = OpenSignedCheckpoint(checkpoint.out, *NoteVerifier::FromVerifierKey(verifier_key_),
                                     testing::kOrigin);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->size, 30u);
  EXPECT_EQ(opened->root, root30_);
  // The entries the server acknowledged still show; the injected one does not.
  CliRun shown = Probity("ledger show --dir " + dir_.string() + " --warrant injected-99");
  EXPECT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_TRUE(JsonLines(shown.out).empty()) << shown.out;
}

TEST_F(LedgerCliTest, ShowStopsAtAnEntryThatIsNotALedgerEntryAndFails) {
  // Records with valid CRCs behind a commit marker (whose signature only verify checks): the
  // reader hands the entry over, and show's error ends the scan and then the process.
  const auto segment = testing::SegmentFiles(dir_).back();
  testing::WriteFile(segment, testing::ReadFile(segment) +
                                  testing::EncodeRawRecord(std::string("\x07not a message")) +
                                  testing::EncodeRawRecord("marker", testing::kCommitRecord));
  CliRun shown = Probity("ledger show --dir " + dir_.string() + " --from 28");
  EXPECT_EQ(shown.exit_code, 1) << shown.out;
  EXPECT_NE(shown.out.find("probity: entry 30 is not a LedgerEntry message"), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("{\"index\":29,"), std::string::npos) << "entries before it print";
}

TEST_F(LedgerCliTest, ShowAndExportFilter) {
  CliRun by_warrant = Probity("ledger show --dir " + dir_.string() + " --warrant w-5");
  ASSERT_EQ(by_warrant.exit_code, 0) << by_warrant.out;
  auto lines = JsonLines(by_warrant.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["index"], 5);
  EXPECT_EQ(lines[0]["entry"]["warrant_id"], "w-5");

  CliRun by_case = Probity("ledger show --dir " + dir_.string() + " --case CASE-odd");
  ASSERT_EQ(by_case.exit_code, 0);
  EXPECT_EQ(JsonLines(by_case.out).size(), 15u);

  // Entry n is at 1700000000 s + n ms: [1700000000.010, 1700000000.020) holds entries 10..19.
  CliRun by_time = Probity("ledger show --dir " + dir_.string() +
                           " --since 2023-11-14T22:13:20.010Z --until 2023-11-14T22:13:20.020Z");
  ASSERT_EQ(by_time.exit_code, 0) << by_time.out;
  auto timed = JsonLines(by_time.out);
  ASSERT_EQ(timed.size(), 10u);
  EXPECT_EQ(timed.front()["index"], 10);

  // Zero values are data to an auditor (candidate id 0 on shard 0), never left out.
  CliRun first = Probity("ledger show --dir " + dir_.string() + " --from 0 --limit 1");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const auto candidate = JsonLines(first.out).at(0)["entry"]["queries"][0]["candidates"][0];
  EXPECT_EQ(candidate["id"], "0") << first.out;
  EXPECT_EQ(candidate["shard"], 0) << first.out;

  CliRun exported = Probity("ledger export --dir " + dir_.string() + " --from 20 --limit 3");
  ASSERT_EQ(exported.exit_code, 0) << exported.out;
  auto rows = JsonLines(exported.out);
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& row : rows) {
    std::string stored;
    ASSERT_TRUE(absl::Base64Unescape(row["bytes"].get<std::string>(), &stored));
    EXPECT_EQ(stored, testing::SampleEntry(row["index"].get<uint64_t>()).SerializeAsString());
    EXPECT_EQ(row["leaf_hash"], ToHex(HashLeaf(stored)));
  }
}

TEST_F(LedgerCliTest, CheckpointAndProofsVerifyOutsideTheTool) {
  CliRun checkpoint =
      Probity("ledger checkpoint --dir " + dir_.string() + " --signing-key " +
              (scratch_.path() / "key.pem").string() + " --origin " + testing::kOrigin);
  ASSERT_EQ(checkpoint.exit_code, 0) << checkpoint.out;
  auto opened = OpenSignedCheckpoint(checkpoint.out, *NoteVerifier::FromVerifierKey(verifier_key_),
                                     testing::kOrigin);
  ASSERT_TRUE(opened.ok()) << opened.status() << checkpoint.out;
  EXPECT_EQ(opened->size, 30u);
  EXPECT_EQ(opened->root, root30_);

  CliRun inclusion = Probity("ledger prove --dir " + dir_.string() + " inclusion --index 7");
  ASSERT_EQ(inclusion.exit_code, 0) << inclusion.out;
  auto proof = nlohmann::json::parse(inclusion.out);
  EXPECT_EQ(proof["tree_size"], 30);
  EXPECT_TRUE(VerifyInclusion(7, 30, HashLeaf(testing::SampleEntry(7).SerializeAsString()),
                              HashesOf(proof["proof"]), root30_)
                  .ok());

  CliRun consistency = Probity("ledger prove --dir " + dir_.string() + " consistency --old 10");
  ASSERT_EQ(consistency.exit_code, 0) << consistency.out;
  auto consistent = nlohmann::json::parse(consistency.out);
  EXPECT_TRUE(VerifyConsistency(10, 30, root10_, root30_, HashesOf(consistent["proof"])).ok());

  CliRun base64 =
      Probity("ledger prove --dir " + dir_.string() + " --encoding base64 inclusion --index 0");
  ASSERT_EQ(base64.exit_code, 0) << base64.out;
  EXPECT_EQ(nlohmann::json::parse(base64.out)["root"],
            absl::Base64Escape(std::string(root30_.begin(), root30_.end())));
  EXPECT_NE(Probity("ledger prove --dir " + dir_.string() + " inclusion --index 30").exit_code, 0);
}

using test_support::ScopedUmask;

class LedgerCliOutputFileTest : public LedgerCliTest {
 protected:
  std::string CheckpointArguments() const {
    return "ledger checkpoint --dir " + dir_.string() + " --signing-key " +
           (scratch_.path() / "key.pem").string() + " --origin " + testing::kOrigin;
  }
  std::string ExportArguments() const { return "ledger export --dir " + dir_.string(); }
};

class LedgerCliUmaskTest : public LedgerCliOutputFileTest,
                           public ::testing::WithParamInterface<mode_t> {};

// An export holds the ledger's contents and a checkpoint file sits beside it: both are 0600
// whatever the umask, and hold exactly what the command prints without --out.
TEST_P(LedgerCliUmaskTest, ExportAndCheckpointFilesAreOwnerOnly) {
  const CliRun printed_export = Probity(ExportArguments());
  ASSERT_EQ(printed_export.exit_code, 0) << printed_export.out;
  const CliRun printed_checkpoint = Probity(CheckpointArguments());
  ASSERT_EQ(printed_checkpoint.exit_code, 0) << printed_checkpoint.out;

  const auto export_file = scratch_.path() / "export.jsonl";
  const auto checkpoint_file = scratch_.path() / "checkpoint";
  {
    ScopedUmask umask(GetParam());
    const CliRun exported = Probity(ExportArguments() + " --out " + export_file.string());
    ASSERT_EQ(exported.exit_code, 0) << exported.out;
    const CliRun checkpoint = Probity(CheckpointArguments() + " --out " + checkpoint_file.string());
    ASSERT_EQ(checkpoint.exit_code, 0) << checkpoint.out;
    EXPECT_EQ(checkpoint.out, printed_checkpoint.out);
  }
  EXPECT_EQ(testing::FileMode(export_file), 0600u);
  EXPECT_EQ(testing::FileMode(checkpoint_file), 0600u);
  EXPECT_EQ(testing::ReadFile(export_file), printed_export.out);
  EXPECT_EQ(JsonLines(testing::ReadFile(export_file)).size(), 30u);
  EXPECT_EQ(testing::ReadFile(checkpoint_file), printed_checkpoint.out);
}

// 022: the usual umask; 0: one under which a plain std::ofstream makes a world-writable file.
INSTANTIATE_TEST_SUITE_P(Umasks, LedgerCliUmaskTest, ::testing::Values(022, 0),
                         [](const auto& info) { return absl::StrFormat("umask%03o", info.param); });

// A file that cannot be written (its directory does not exist) fails the command with a message
// naming it, and leaves nothing behind; the checkpoint is then not printed either.
TEST_F(LedgerCliOutputFileTest, KeygenWritesTheVerifierKeyItPrintsAndFailsLoudlyWhenItCannot) {
  const auto key = scratch_.path() / "other.pem";
  const auto verifier = scratch_.path() / "other.vkey";
  const CliRun made = Probity("ledger keygen --out " + key.string() + " --name other.example/log" +
                              " --verifier-out " + verifier.string());
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto written = common::ReadFileToString(verifier);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, made.out.substr(0, made.out.find('\n') + 1));

  const auto missing = scratch_.path() / "no-such-dir" / "other.vkey";
  const CliRun failed = Probity("ledger keygen --out " + (scratch_.path() / "third.pem").string() +
                                " --name third.example/log --verifier-out " + missing.string());
  EXPECT_NE(failed.exit_code, 0) << failed.out;
  EXPECT_NE(failed.out.find("cannot write " + missing.string()), std::string::npos) << failed.out;
  EXPECT_EQ(failed.out.find("third.example/log+"), std::string::npos)
      << "a verifier key that was not written must not be printed: " << failed.out;
  EXPECT_FALSE(std::filesystem::exists(scratch_.path() / "third.pem"))
      << "the key made for it is taken back, so the command can simply be run again";
}

TEST_F(LedgerCliOutputFileTest, UnwritableOutputFailsNamingThePath) {
  const auto missing_dir = scratch_.path() / "no-such-dir";
  const auto before = std::distance(std::filesystem::directory_iterator(scratch_.path()),
                                    std::filesystem::directory_iterator());
  for (const std::string& arguments : {ExportArguments(), CheckpointArguments()}) {
    const auto out = missing_dir / "out";
    const CliRun run = Probity(arguments + " --out " + out.string());
    EXPECT_NE(run.exit_code, 0) << arguments << "\n" << run.out;
    EXPECT_NE(run.out.find("cannot write " + out.string()), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find(testing::kOrigin), std::string::npos)
        << "a checkpoint that was not written must not be printed: " << run.out;
  }
  EXPECT_FALSE(std::filesystem::exists(missing_dir));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(scratch_.path()),
                          std::filesystem::directory_iterator()),
            before)
      << "a failed write leaves no file behind";
}

}  // namespace
}  // namespace probity::ledger
