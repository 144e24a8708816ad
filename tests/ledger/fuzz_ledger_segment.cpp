// libFuzzer target for everything that reads ledger segment bytes, which anyone with write
// access to the directory controls. The first input byte picks the entry point and whether
// the rest is taken raw or as records given valid checksums (random bytes almost never pass
// a CRC32C, so the paths behind it need the help):
//  decoding in memory, with its invariants (records tile the intact bytes, each re-encodes
//  to exactly the bytes it was decoded from); the bytes as a whole segment file through the
//  auditor's readers (ReadEntries, LedgerReader, VerifyLedger); and the bytes appended to a
//  genuine segment written by a real ledger (an injection or a torn tail) through
//  Ledger::Open, which must never adopt any of them. The file-based paths are slower, so
//  they get fewer of the inputs.
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/reader.h"
#include "probity/ledger/verify.h"
#include "segment_file.h"

namespace {

using namespace probity::ledger;

constexpr char kOrigin[] = "fuzz.probity/log";
constexpr uint64_t kGenuineEntries = 3;

struct Fixture {
  std::filesystem::path dir;
  std::filesystem::path key;
  std::string verifier_key;
  std::string genuine_segment;  // header, kGenuineEntries entries and their commit markers
  std::string genuine_checkpoint;
};

Fixture* fixture = nullptr;

void RemoveFixtureDir() {
  std::error_code ignored;
  if (fixture != nullptr) std::filesystem::remove_all(fixture->dir, ignored);
}

[[noreturn]] void Fail(const char* why) {
  fprintf(stderr, "fuzz_ledger_segment: %s\n", why);
  abort();
}

Options LedgerOptions() {
  Options options;
  options.dir = fixture->dir / "log";
  options.origin = kOrigin;
  options.signing_key = fixture->key;
  options.fsync = false;
  return options;
}

// A fresh ledger directory holding one segment file with these bytes.
void WriteSegment(const std::string& bytes) {
  const auto dir = fixture->dir / "log";
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  std::filesystem::create_directory(dir);
  std::ofstream(dir / probity::ledger::internal::SegmentFileName(0), std::ios::binary) << bytes;
}

void CheckDecoding(std::string_view bytes) {
  using namespace probity::ledger::internal;
  uint64_t expected_offset = kSegmentHeaderBytes;
  uint64_t entries = 0;
  const SegmentContents contents =
      DecodeSegment(bytes, 7, [&](const RecordInfo& record, std::string_view payload) {
        if (record.offset != expected_offset || record.end > bytes.size() ||
            record.entry_index != 7 + entries) {
          Fail("records do not tile the segment");
        }
        if (EncodeRecord(record.type, payload) !=
            bytes.substr(record.offset, record.end - record.offset)) {
          Fail("a decoded record does not re-encode to its bytes");
        }
        if (record.type == RecordType::kEntry) ++entries;
        expected_offset = record.end;
      });
  if (contents.entry_count != entries || contents.intact_bytes > bytes.size() ||
      (!contents.damage && contents.intact_bytes != bytes.size()) ||
      (!contents.records.empty() && contents.intact_bytes != contents.records.back().end)) {
    Fail("inconsistent segment contents");
  }
}

void ReadAsAuditor(const std::string& bytes) {
  WriteSegment(bytes);
  const auto dir = fixture->dir / "log";
  uint64_t next = 0;
  (void)ReadEntries(dir, 0, [&](uint64_t index, std::string_view) {
    if (index != next++) Fail("ReadEntries skipped or repeated an index");
    return true;
  });
  (void)LedgerReader::Open(dir);
  VerifyOptions options;
  options.dir = dir;
  options.verifier = *NoteVerifier::FromVerifierKey(fixture->verifier_key);
  options.origin = kOrigin;
  (void)VerifyLedger(options);
}

void OpenAfterInjection(const std::string& bytes) {
  WriteSegment(fixture->genuine_segment + bytes);
  auto ledger = Ledger::Open(LedgerOptions());
  // Refusing is allowed; adopting anything the server did not sign is not.
  if (ledger.ok() && ((*ledger)->Size() != kGenuineEntries ||
                      *(*ledger)->SignedCheckpoint() != fixture->genuine_checkpoint)) {
    Fail("Open adopted records after the last genuine commit marker");
  }
}

// Records with valid checksums from "type, length, payload" triples; a last byte beyond the
// records, if any, cuts the result short by that many bytes (a torn write).
std::string ChecksummedRecords(std::string_view input) {
  using probity::ledger::internal::EncodeRecord;
  using probity::ledger::internal::RecordType;
  std::string records;
  while (input.size() >= 2) {
    const auto type = static_cast<RecordType>(static_cast<uint8_t>(input[0]));
    const size_t length = std::min<size_t>(static_cast<uint8_t>(input[1]), input.size() - 2);
    records += EncodeRecord(type, input.substr(2, length));
    input.remove_prefix(2 + length);
  }
  if (!input.empty())
    records.resize(records.size() - std::min<size_t>(records.size(), input[0] % 16));
  return records;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::umask(077);
  spdlog::set_level(spdlog::level::off);  // every cut tail logs an error
  fixture = new Fixture;
  char pattern[] = "/tmp/fuzz-ledger-XXXXXX";
  if (mkdtemp(pattern) == nullptr) Fail("mkdtemp");
  fixture->dir = pattern;
  atexit(RemoveFixtureDir);
  fixture->key = fixture->dir / "key.pem";
  if (!GenerateSigningKey(fixture->key).ok()) Fail("key");
  auto ledger = Ledger::Open(LedgerOptions());
  if (!ledger.ok()) Fail("ledger");
  for (uint64_t i = 0; i < kGenuineEntries; ++i) {
    probity::v1::LedgerEntry entry;
    entry.set_warrant_id("genuine-" + std::to_string(i));
    if (!(*ledger)->Append(entry).ok()) Fail("append");
  }
  fixture->verifier_key = (*ledger)->VerifierKey();
  fixture->genuine_checkpoint = *(*ledger)->SignedCheckpoint();
  ledger->reset();
  std::ifstream in(fixture->dir / "log" / probity::ledger::internal::SegmentFileName(0),
                   std::ios::binary);
  fixture->genuine_segment.assign(std::istreambuf_iterator<char>(in), {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string raw(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool checksummed = (data[0] & 1) != 0;
  const std::string input = checksummed ? ChecksummedRecords(raw) : raw;
  using probity::ledger::internal::EncodeSegmentHeader;
  switch ((data[0] >> 1) % 16) {
    case 14:
      ReadAsAuditor(EncodeSegmentHeader(0, ~uint64_t{0}) + input);
      break;
    case 15:
      OpenAfterInjection(input);
      break;
    default:
      CheckDecoding(input);
      // The same bytes behind a valid header, so records are reached.
      CheckDecoding(EncodeSegmentHeader(7, 0) + input);
      break;
  }
  return 0;
}
