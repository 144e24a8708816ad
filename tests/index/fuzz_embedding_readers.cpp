// libFuzzer target for the embedding file readers (.fvecs .ivecs .bvecs .fbin .ibin .u8bin
// .npy). The readers take a path, so every input is written to a scratch file whose extension
// the first byte picks; the second byte picks the read options and how the rows are read. One
// mode builds a well-formed .npy prefix around a fuzzed header dictionary, which random bytes
// would rarely reach. Whatever the bytes, a reader answers with rows or an error, and the rows
// it answers with must be what its header promised.
#include <stdio.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "probity/index/embedding_io.h"

namespace {

using namespace probity::index;

std::filesystem::path* scratch_dir = nullptr;

void RemoveScratchDir() {
  std::error_code ignored;
  if (scratch_dir != nullptr) std::filesystem::remove_all(*scratch_dir, ignored);
}

[[noreturn]] void Fail(const char* why) {
  fprintf(stderr, "fuzz_embedding_readers: %s\n", why);
  abort();
}

constexpr const char* kExtensions[] = {".fvecs", ".ivecs", ".bvecs", ".fbin",
                                       ".ibin",  ".u8bin", ".npy"};
constexpr int kFormats = sizeof(kExtensions) / sizeof(kExtensions[0]);

int64_t ElementBytes(ElementType type) {
  switch (type) {
    case ElementType::kInt64:
      return 8;
    case ElementType::kUint8:
      return 1;
    default:
      return 4;
  }
}

// "\x93NUMPY" version 1.0, the dictionary's length, the dictionary, then the data.
std::string NpyAround(const std::string& dict, const std::string& data) {
  const uint16_t length = static_cast<uint16_t>(dict.size());
  std::string file("\x93NUMPY\x01\x00", 8);
  file.append(reinterpret_cast<const char*>(&length), 2);
  return file + dict + data;
}

void CheckFloats(const std::vector<float>& values, const ReadOptions& options) {
  for (float x : values) {
    if (options.reject_non_finite && !std::isfinite(x)) Fail("a non-finite value got through");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char pattern[] = "/tmp/fuzz-embedding-XXXXXX";
  if (mkdtemp(pattern) == nullptr) Fail("mkdtemp");
  scratch_dir = new std::filesystem::path(pattern);
  atexit(RemoveScratchDir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] % (kFormats + 1);
  const uint8_t flags = data[1];
  std::string body(reinterpret_cast<const char*>(data + 2), size - 2);
  const bool built_npy = mode == kFormats;
  int64_t npy_data_bytes = 0;
  if (built_npy) {  // the dictionary runs up to the first newline (included), data follows
    const size_t newline = body.find('\n');
    const size_t split = newline == std::string::npos ? body.size() : newline + 1;
    npy_data_bytes = static_cast<int64_t>(body.size() - split);
    body = NpyAround(body.substr(0, split), body.substr(split));
  }
  const std::filesystem::path file =
      *scratch_dir / (std::string("input") + kExtensions[built_npy ? kFormats - 1 : mode]);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    if (!out.flush()) Fail("cannot write the scratch file");
  }

  ReadOptions options;
  if (flags & 1) options.expected_dim = 1 + (flags >> 5);
  options.reject_non_finite = (flags & 2) == 0;
  options.reject_zero_vectors = (flags & 4) != 0;
  options.normalize = (flags & 8) != 0;
  const bool as_ints = (flags & 16) != 0;
  const int64_t chunk_rows = 1 + (flags >> 5);

  auto reader = MatrixReader::Open(file, options);
  if (!reader.ok()) {
    if (reader.status().message().empty()) Fail("an error without a message");
    return 0;
  }
  MatrixReader& r = **reader;
  if (r.dim() < 0 || r.rows() < 0) Fail("negative shape");
  if (options.expected_dim && r.rows() > 0 && r.dim() != *options.expected_dim) {
    Fail("wrong dimension accepted");
  }
  // Every row the header promises must be in the file: no reader may invent data.
  if (r.rows() > 0 &&
      r.rows() > static_cast<int64_t>(body.size()) / (r.dim() * ElementBytes(r.element_type()))) {
    Fail("more rows than the file can hold");
  }
  if (built_npy && r.rows() * r.dim() * ElementBytes(r.element_type()) != npy_data_bytes) {
    Fail("the .npy data is not exactly the rows the header declares");
  }
  if (as_ints) {
    std::vector<int64_t> values;
    while (true) {
      auto got = r.ReadInts(chunk_rows, &values);
      if (!got.ok()) return 0;
      if (*got == 0) break;
    }
    if (static_cast<int64_t>(values.size()) != r.rows() * r.dim()) Fail("int rows lost");
  } else {
    std::vector<float> values;
    while (true) {
      auto got = r.ReadFloats(chunk_rows, &values);
      if (!got.ok()) return 0;
      if (*got == 0) break;
    }
    if (static_cast<int64_t>(values.size()) != r.rows() * r.dim()) Fail("float rows lost");
    CheckFloats(values, options);
    // The whole-matrix reader must agree with the streamed one, bit for bit (NaN included).
    auto matrix = ReadFloatMatrix(file, options);
    if (!matrix.ok() || matrix->rows != r.rows() || matrix->data.size() != values.size() ||
        (!values.empty() &&
         std::memcmp(matrix->data.data(), values.data(), values.size() * sizeof(float)) != 0)) {
      Fail("ReadFloatMatrix disagrees with the streamed reader");
    }
  }
  return 0;
}
