#include "probity/index/embedding_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "test_data.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

void Truncate(const fs::path& path, int64_t drop) {
  fs::resize_file(path, fs::file_size(path) - drop);
}

void WriteRaw(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class EmbeddingFormatTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EmbeddingFormatTest, RoundTripsInChunks) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / ("m" + GetParam());
  std::vector<float> data = testing::RandomRows(37, 6, 3, false);
  const bool integral = GetParam() != ".fvecs" && GetParam() != ".fbin" && GetParam() != ".npy";
  if (integral) {
    for (float& x : data) x = std::round(std::fabs(x) * 40);
  }
  {
    auto writer = MatrixWriter::Create(path, 6);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->AppendFloats(std::span(data).first(10 * 6)).ok());
    ASSERT_TRUE((*writer)->AppendFloats(std::span(data).subspan(10 * 6)).ok());
    ASSERT_TRUE((*writer)->Close().ok());
  }
  auto reader = MatrixReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->dim(), 6);
  EXPECT_EQ((*reader)->rows(), 37);
  std::vector<float> back;
  while (true) {
    auto rows = (*reader)->ReadFloats(8, &back);
    ASSERT_TRUE(rows.ok()) << rows.status();
    if (*rows == 0) break;
  }
  EXPECT_EQ(back, data);
  if (integral) {
    auto ints = ReadIntMatrix(path);
    ASSERT_TRUE(ints.ok());
    EXPECT_EQ(ints->data[7], static_cast<int64_t>(data[7]));
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, EmbeddingFormatTest,
                         ::testing::Values(".fvecs", ".ivecs", ".bvecs", ".fbin", ".ibin", ".u8bin",
                                           ".npy"),
                         [](const auto& info) { return info.param.substr(1); });

// Ranged reads (what shard builds and training samples use) return exactly the rows of a whole
// read, in every format, from any starting row and in any order.
TEST_P(EmbeddingFormatTest, RangedReadsEqualTheWholeRead) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / ("m" + GetParam());
  std::vector<float> data = testing::RandomRows(53, 5, 4, false);
  const bool integral = GetParam() != ".fvecs" && GetParam() != ".fbin" && GetParam() != ".npy";
  if (integral) {
    for (float& x : data) x = std::round(std::fabs(x) * 40);
  }
  ASSERT_TRUE(WriteFloatMatrix(path, 5, data).ok());
  auto whole = ReadFloatMatrix(path);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_EQ(whole->data, data);
  auto reader = MatrixReader::Open(path);
  ASSERT_TRUE(reader.ok());
  const std::vector<std::pair<int64_t, int64_t>> ranges = {{40, 13},  {0, 7}, {7, 20}, {52, 1},
                                                           {27, 100}, {3, 1}, {53, 4}};
  for (const auto& [first, count] : ranges) {
    std::vector<float> got;
    auto rows = (*reader)->ReadFloatsAt(first, count, &got);
    ASSERT_TRUE(rows.ok()) << rows.status();
    const int64_t expected = std::min<int64_t>(count, 53 - first);
    EXPECT_EQ(*rows, expected) << first;
    EXPECT_EQ(got,
              std::vector<float>(data.begin() + first * 5, data.begin() + (first + expected) * 5))
        << "rows " << first << ".." << first + expected;
    EXPECT_EQ((*reader)->rows_read(), first + expected);
  }
  // After a ranged read, a plain read goes on from where it stopped.
  std::vector<float> next;
  ASSERT_TRUE((*reader)->ReadFloatsAt(10, 2, &next).ok());
  ASSERT_TRUE((*reader)->ReadFloats(3, &next).ok());
  EXPECT_EQ(next, std::vector<float>(data.begin() + 10 * 5, data.begin() + 15 * 5));
  EXPECT_EQ((*reader)->SeekToRow(54).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ((*reader)->SeekToRow(-1).code(), absl::StatusCode::kOutOfRange);
  if (integral) {
    std::vector<int64_t> ints;
    ASSERT_TRUE((*reader)->ReadIntsAt(20, 1, &ints).ok());
    ASSERT_EQ(ints.size(), 5u);
    EXPECT_EQ(ints[2], static_cast<int64_t>(data[20 * 5 + 2]));
  }
}

TEST(EmbeddingIoTest, WrittenFilesAreOwnerOnlyWhateverTheUmask) {
  testing::ScratchDir scratch;
  const mode_t old_umask = ::umask(022);
  const fs::path fresh = scratch.path() / "fresh.fbin";
  const fs::path existing = scratch.path() / "existing.fvecs";
  WriteRaw(existing, "old");
  fs::permissions(existing, fs::perms::all);
  const bool written = WriteFloatMatrix(fresh, 2, std::vector<float>{1, 2}).ok() &&
                       WriteFloatMatrix(existing, 2, std::vector<float>{3, 4}).ok();
  ::umask(old_umask);
  ASSERT_TRUE(written);
  const fs::perms owner_rw = fs::perms::owner_read | fs::perms::owner_write;
  EXPECT_EQ(fs::status(fresh).permissions(), owner_rw);
  EXPECT_EQ(fs::status(existing).permissions(), owner_rw);
  auto read = ReadFloatMatrix(existing);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data, (std::vector<float>{3, 4}));
}

TEST(EmbeddingIoTest, TruncatedFilesNameFileAndOffset) {
  testing::ScratchDir scratch;
  const std::vector<float> data = testing::RandomRows(10, 4, 1);
  for (const std::string ext : {".fvecs", ".fbin", ".npy"}) {
    const fs::path path = scratch.path() / ("t" + ext);
    ASSERT_TRUE(WriteFloatMatrix(path, 4, data).ok());
    Truncate(path, 3);
    auto reader = MatrixReader::Open(path);
    ASSERT_FALSE(reader.ok()) << ext;
    EXPECT_THAT(reader.status().message(), HasSubstr(path.string())) << ext;
    EXPECT_THAT(reader.status().message(), HasSubstr("truncated")) << ext;
    EXPECT_THAT(reader.status().message(), HasSubstr("offset ")) << ext;
  }
  const fs::path fvecs = scratch.path() / "t.fvecs";
  ASSERT_TRUE(WriteFloatMatrix(fvecs, 4, data).ok());
  Truncate(fvecs, 3);
  EXPECT_THAT(MatrixReader::Open(fvecs).status().message(), HasSubstr("offset 180"));
}

TEST(EmbeddingIoTest, WrongDimensionIsReported) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "d.fbin";
  ASSERT_TRUE(WriteFloatMatrix(path, 4, testing::RandomRows(3, 4, 1)).ok());
  ReadOptions options;
  options.expected_dim = 8;
  auto reader = MatrixReader::Open(path, options);
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("wrong dimension: the file has 4, expected 8"));

  // A .fvecs row whose own dimension header disagrees with the first row's.
  const fs::path fvecs = scratch.path() / "d.fvecs";
  ASSERT_TRUE(WriteFloatMatrix(fvecs, 4, testing::RandomRows(3, 4, 1)).ok());
  {
    std::fstream file(fvecs, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(2 * 20);
    const int32_t five = 5;
    file.write(reinterpret_cast<const char*>(&five), 4);
  }
  auto fvecs_reader = MatrixReader::Open(fvecs);
  ASSERT_TRUE(fvecs_reader.ok());
  std::vector<float> out;
  auto rows = (*fvecs_reader)->ReadFloats(10, &out);
  ASSERT_FALSE(rows.ok());
  EXPECT_THAT(rows.status().message(), HasSubstr("offset 40: row 2 has dimension 5"));
}

TEST(EmbeddingIoTest, WrongNpyDtypeIsReported) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "f8.npy";
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
  dict.resize(117, ' ');
  dict += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + std::string("\x76\x00", 2) + dict +
                      std::string(32, '\0');
  WriteRaw(path, bytes);
  auto reader = MatrixReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("wrong dtype '<f8'"));
  EXPECT_THAT(reader.status().message(), HasSubstr(path.string()));
}

TEST(EmbeddingIoTest, NanAndInfAreReportedWithTheirOffset) {
  testing::ScratchDir scratch;
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> data = testing::RandomRows(5, 4, 1);
    data[3 * 4 + 2] = bad;
    const fs::path path = scratch.path() / "n.fbin";
    ASSERT_TRUE(WriteFloatMatrix(path, 4, data).ok());
    auto matrix = ReadFloatMatrix(path);
    ASSERT_FALSE(matrix.ok());
    // 8-byte header + 3 rows of 16 bytes + 2 floats.
    EXPECT_THAT(matrix.status().message(), HasSubstr("offset 64: row 3 column 2 is"));
    EXPECT_THAT(matrix.status().message(), HasSubstr(std::isnan(bad) ? "NaN" : "infinite"));
  }
}

TEST(EmbeddingIoTest, ZeroVectorsAreRefusedWhereUnitVectorsAreNeeded) {
  testing::ScratchDir scratch;
  std::vector<float> data = testing::RandomRows(5, 4, 1);
  std::fill(data.begin() + 8, data.begin() + 12, 0.0f);
  const fs::path path = scratch.path() / "z.fvecs";
  ASSERT_TRUE(WriteFloatMatrix(path, 4, data).ok());
  EXPECT_TRUE(ReadFloatMatrix(path).ok());  // L2 collections may hold a zero vector
  ReadOptions options;
  options.reject_zero_vectors = true;
  auto matrix = ReadFloatMatrix(path, options);
  ASSERT_FALSE(matrix.ok());
  EXPECT_THAT(matrix.status().message(), HasSubstr("offset 40: row 2 is a zero vector"));
}

TEST(EmbeddingIoTest, NormalizeScalesRowsToUnitLength) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "u.npy";
  ASSERT_TRUE(WriteFloatMatrix(path, 8, testing::RandomRows(4, 8, 2, false)).ok());
  ReadOptions options;
  options.normalize = true;
  auto matrix = ReadFloatMatrix(path, options);
  ASSERT_TRUE(matrix.ok());
  for (int r = 0; r < 4; ++r) {
    double norm2 = 0;
    for (int c = 0; c < 8; ++c) norm2 += matrix->data[r * 8 + c] * matrix->data[r * 8 + c];
    EXPECT_NEAR(norm2, 1.0, 1e-5);
  }
}

// Found by fuzz_embedding_readers: scaling by 1/norm in float overflowed to infinity for a
// denormal row and turned it into Inf and NaN instead of a unit vector.
TEST(EmbeddingIoTest, NormalizeKeepsTinyRowsFinite) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "tiny.fvecs";
  const float tiny = std::numeric_limits<float>::denorm_min() * 1000;
  ASSERT_TRUE(WriteFloatMatrix(path, 2, std::vector<float>{tiny, 0.0f, tiny, -tiny}).ok());
  ReadOptions options;
  options.normalize = true;
  auto matrix = ReadFloatMatrix(path, options);
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  EXPECT_FLOAT_EQ(matrix->data[0], 1.0f);
  EXPECT_FLOAT_EQ(matrix->data[1], 0.0f);
  EXPECT_FLOAT_EQ(matrix->data[2], static_cast<float>(std::sqrt(0.5)));
  EXPECT_FLOAT_EQ(matrix->data[3], -static_cast<float>(std::sqrt(0.5)));
}

// A .npy file: version 1.0 header around `dict`, then `data`.
std::string Npy(const std::string& dict, const std::string& data) {
  const uint16_t length = static_cast<uint16_t>(dict.size());
  return std::string("\x93NUMPY\x01\x00", 8) +
         std::string(reinterpret_cast<const char*>(&length), 2) + dict + data;
}

// Shown by fuzz_embedding_readers (its .npy mode, under UBSan): the row count times the row
// size overflowed, and a shape of 2^62 rows passed the file-size check of an empty file.
TEST(EmbeddingIoTest, NpyShapeThatOverflowsTheByteCountIsRefused) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "huge.npy";
  WriteRaw(path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 2), "
                     "}\n",
                     ""));
  auto reader = MatrixReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(),
              HasSubstr("truncated: the header declares 4611686018427387904 rows of 2"));
}

// 2^32 + 1 columns were cut down to an int, so the file read as one column per row.
TEST(EmbeddingIoTest, NpyColumnsBeyondTheDimensionLimitAreRefused) {
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "wide.npy";
  WriteRaw(path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4294967297), }\n",
                     std::string(4, '\0')));
  auto reader = MatrixReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("bad dimension 4294967297"));
}

TEST(EmbeddingIoTest, UnknownExtensionAndFloatIdsAreRefused) {
  testing::ScratchDir scratch;
  EXPECT_FALSE(MatrixWriter::Create(scratch.path() / "x.csv", 3).ok());
  const fs::path path = scratch.path() / "ids.fbin";
  ASSERT_TRUE(WriteFloatMatrix(path, 1, std::vector<float>{1, 2}).ok());
  auto ids = ReadIntMatrix(path);
  ASSERT_FALSE(ids.ok());
  EXPECT_THAT(ids.status().message(), HasSubstr("wrong dtype"));
}

TEST(EmbeddingIoTest, NumpyReadsWhatProbityWrites) {
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-numpy is not installed";
  }
  testing::ScratchDir scratch;
  const fs::path path = scratch.path() / "p.npy";
  ASSERT_TRUE(WriteFloatMatrix(path, 3, std::vector<float>{1, 2, 3, 4, 5, 6.5}).ok());
  const std::string command =
      "/usr/bin/python3 -c \"import numpy, sys; a = numpy.load(sys.argv[1]); "
      "sys.exit(0 if a.shape == (2, 3) and a.dtype == numpy.float32 and a[1, 2] == 6.5 else 1)\" " +
      path.string();
  EXPECT_EQ(std::system(command.c_str()), 0);
}

}  // namespace
}  // namespace probity::index
