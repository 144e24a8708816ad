#pragma once

// Streamed readers and writers for the embedding file formats of docs/ARCHITECTURE.md: TEXMEX
// .fvecs/.ivecs/.bvecs (int32 dimension before every row), big-ann-benchmarks
// .fbin/.ibin/.u8bin (uint32 rows, uint32 dim, then rows) and NumPy .npy (2-D, C order;
// float32 for vectors, int32/int64 also accepted for id and label files). Rows are read in
// chunks so memory stays flat whatever the file size. Every error names the file and the byte
// offset where the problem is.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace probity::index {

enum class EmbeddingFormat { kFvecs, kIvecs, kBvecs, kFbin, kIbin, kU8bin, kNpy };
enum class ElementType { kFloat32, kInt32, kInt64, kUint8 };

// From the file name's extension.
absl::StatusOr<EmbeddingFormat> FormatFromPath(const std::filesystem::path& path);

struct ReadOptions {
  std::optional<int> expected_dim;   // wrong dimension is an error when set
  bool reject_non_finite = true;     // NaN or Inf in a float row
  bool reject_zero_vectors = false;  // set where the metric needs unit vectors
  bool normalize = false;            // scale every float row to unit length
};

class MatrixReader {
 public:
  static absl::StatusOr<std::unique_ptr<MatrixReader>> Open(const std::filesystem::path& path,
                                                            const ReadOptions& options = {});

  int dim() const { return dim_; }
  int64_t rows() const { return rows_; }
  int64_t rows_read() const { return next_row_; }
  ElementType element_type() const { return type_; }

  // Appends up to max_rows further rows to *out (as float) and returns how many; 0 at the end.
  absl::StatusOr<int64_t> ReadFloats(int64_t max_rows, std::vector<float>* out);
  // The same for integer files (ids, labels, ground truth); float files are refused.
  absl::StatusOr<int64_t> ReadInts(int64_t max_rows, std::vector<int64_t>* out);

  // Ranged reads: the next ReadFloats/ReadInts starts at `row` (0 <= row <= rows()). Rows sit
  // at fixed byte offsets in every format, so a reader can start anywhere without reading what
  // comes before: shard builds and training samples read only the rows they need.
  absl::Status SeekToRow(int64_t row);
  // SeekToRow(first_row), then ReadFloats(max_rows, out).
  absl::StatusOr<int64_t> ReadFloatsAt(int64_t first_row, int64_t max_rows,
                                       std::vector<float>* out);
  absl::StatusOr<int64_t> ReadIntsAt(int64_t first_row, int64_t max_rows,
                                     std::vector<int64_t>* out);

 private:
  MatrixReader() = default;
  absl::Status ReadRaw(int64_t rows, std::vector<char>* raw);
  absl::Status CheckFloatRows(std::span<float> rows, int64_t first_row);

  std::filesystem::path path_;
  std::ifstream in_;
  EmbeddingFormat format_ = EmbeddingFormat::kFvecs;
  ElementType type_ = ElementType::kFloat32;
  ReadOptions options_;
  int dim_ = 0;
  int64_t rows_ = 0;
  int64_t data_offset_ = 0;  // byte offset of row 0
  int64_t row_bytes_ = 0;    // on disk, including a per-row dimension header
  int64_t next_row_ = 0;
};

// A whole (small) matrix in memory: ground truth, labels, query sets.
struct FloatMatrix {
  int64_t rows = 0;
  int dim = 0;
  std::vector<float> data;
};
struct IntMatrix {
  int64_t rows = 0;
  int dim = 0;
  std::vector<int64_t> data;
};
absl::StatusOr<FloatMatrix> ReadFloatMatrix(const std::filesystem::path& path,
                                            const ReadOptions& options = {});
absl::StatusOr<IntMatrix> ReadIntMatrix(const std::filesystem::path& path);

// Writes rows in the format named by the path's extension; the element type follows the
// format (.fvecs/.fbin/.npy float32, .ivecs/.ibin int32, .bvecs/.u8bin uint8). Close() fills in
// the row count of formats that carry one in their header.
class MatrixWriter {
 public:
  static absl::StatusOr<std::unique_ptr<MatrixWriter>> Create(const std::filesystem::path& path,
                                                              int dim);
  ~MatrixWriter();
  absl::Status AppendFloats(std::span<const float> rows);
  absl::Status AppendInts(std::span<const int64_t> rows);
  absl::Status Close();
  int64_t rows_written() const { return rows_; }

 private:
  MatrixWriter() = default;
  absl::Status WriteHeader();
  absl::Status AppendRaw(const char* data, int64_t rows, int64_t element_bytes);

  std::filesystem::path path_;
  std::ofstream out_;
  EmbeddingFormat format_ = EmbeddingFormat::kFvecs;
  int dim_ = 0;
  int64_t rows_ = 0;
  bool closed_ = false;
};

// Convenience for tests and generators: writes a whole matrix.
absl::Status WriteFloatMatrix(const std::filesystem::path& path, int dim,
                              std::span<const float> data);
absl::Status WriteIntMatrix(const std::filesystem::path& path, int dim,
                            std::span<const int64_t> data);

}  // namespace probity::index
