#include "probity/index/embedding_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "probity/index/private_files.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr int64_t kNpyHeaderBytes = 128;  // fixed so that Close() can rewrite the row count

int64_t ElementBytes(ElementType type) {
  switch (type) {
    case ElementType::kFloat32:
    case ElementType::kInt32:
      return 4;
    case ElementType::kInt64:
      return 8;
    case ElementType::kUint8:
      return 1;
  }
  return 1;
}

ElementType TypeOfFormat(EmbeddingFormat format) {
  switch (format) {
    case EmbeddingFormat::kIvecs:
    case EmbeddingFormat::kIbin:
      return ElementType::kInt32;
    case EmbeddingFormat::kBvecs:
    case EmbeddingFormat::kU8bin:
      return ElementType::kUint8;
    default:
      return ElementType::kFloat32;
  }
}

bool HasRowHeaders(EmbeddingFormat format) {
  return format == EmbeddingFormat::kFvecs || format == EmbeddingFormat::kIvecs ||
         format == EmbeddingFormat::kBvecs;
}

bool IsBin(EmbeddingFormat format) {
  return format == EmbeddingFormat::kFbin || format == EmbeddingFormat::kIbin ||
         format == EmbeddingFormat::kU8bin;
}

absl::Status Bad(const fs::path& path, int64_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path.string(), ": offset ", offset, ": ", what));
}

template <typename T>
T LoadLittleEndian(const char* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// Parses the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (10, 512), }
absl::StatusOr<NpyHeader> ParseNpyDict(absl::string_view dict, const fs::path& path) {
  NpyHeader header;
  const auto value_after = [&](absl::string_view key) -> std::optional<absl::string_view> {
    const size_t at = dict.find(key);
    if (at == absl::string_view::npos) return std::nullopt;
    absl::string_view rest = dict.substr(at + key.size());
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (!absl::ConsumePrefix(&rest, ":")) return std::nullopt;
    return absl::StripLeadingAsciiWhitespace(rest);
  };
  std::optional<absl::string_view> descr = value_after("'descr'");
  std::optional<absl::string_view> order = value_after("'fortran_order'");
  std::optional<absl::string_view> shape = value_after("'shape'");
  if (!descr || !order || !shape || descr->size() < 2 || descr->front() != '\'') {
    return Bad(path, 10, "unreadable .npy header");
  }
  header.descr = std::string(descr->substr(1, descr->find('\'', 1) - 1));
  header.fortran_order = absl::StartsWith(*order, "True");
  const size_t close = shape->find(')');
  if (shape->empty() || shape->front() != '(' || close == absl::string_view::npos) {
    return Bad(path, 10, "unreadable .npy shape");
  }
  for (absl::string_view part : absl::StrSplit(shape->substr(1, close - 1), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int64_t extent;
    if (!absl::SimpleAtoi(part, &extent) || extent < 0) {
      return Bad(path, 10, "unreadable .npy shape");
    }
    header.shape.push_back(extent);
  }
  return header;
}

}  // namespace

absl::StatusOr<EmbeddingFormat> FormatFromPath(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".fvecs") return EmbeddingFormat::kFvecs;
  if (ext == ".ivecs") return EmbeddingFormat::kIvecs;
  if (ext == ".bvecs") return EmbeddingFormat::kBvecs;
  if (ext == ".fbin") return EmbeddingFormat::kFbin;
  if (ext == ".ibin") return EmbeddingFormat::kIbin;
  if (ext == ".u8bin") return EmbeddingFormat::kU8bin;
  if (ext == ".npy") return EmbeddingFormat::kNpy;
  return absl::InvalidArgumentError(
      absl::StrCat(path.string(), ": unknown embedding format '", ext,
                   "' (expected .fvecs, .ivecs, .bvecs, .fbin, .ibin, .u8bin or .npy)"));
}

absl::StatusOr<std::unique_ptr<MatrixReader>> MatrixReader::Open(const fs::path& path,
                                                                 const ReadOptions& options) {
  absl::StatusOr<EmbeddingFormat> format = FormatFromPath(path);
  if (!format.ok()) return format.status();
  std::error_code error;
  const int64_t size = static_cast<int64_t>(fs::file_size(path, error));
  if (error) return absl::NotFoundError(absl::StrCat(path.string(), ": ", error.message()));
  std::unique_ptr<MatrixReader> reader(new MatrixReader());
  reader->path_ = path;
  reader->format_ = *format;
  reader->type_ = TypeOfFormat(*format);
  reader->options_ = options;
  reader->in_.open(path, std::ios::binary);
  if (!reader->in_) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));

  int64_t declared_bytes = 0;  // what the header says the file holds
  if (HasRowHeaders(*format)) {
    if (size == 0) {
      reader->dim_ = options.expected_dim.value_or(0);
      return reader;
    }
    char head[4];
    if (size < 4 || !reader->in_.read(head, 4)) {
      return Bad(path, 0, absl::StrCat("truncated: ", size, " bytes cannot hold a row"));
    }
    const int32_t dim = LoadLittleEndian<int32_t>(head);
    if (dim <= 0 || dim > (1 << 20)) return Bad(path, 0, absl::StrCat("bad dimension ", dim));
    reader->dim_ = dim;
    reader->row_bytes_ = 4 + dim * ElementBytes(reader->type_);
    reader->rows_ = size / reader->row_bytes_;
    if (size % reader->row_bytes_ != 0) {
      return Bad(path, reader->rows_ * reader->row_bytes_,
                 absl::StrCat("truncated: the last row has ", size % reader->row_bytes_, " of ",
                              reader->row_bytes_, " bytes"));
    }
    declared_bytes = size;
  } else if (IsBin(*format)) {
    char head[8];
    if (size < 8 || !reader->in_.read(head, 8)) {
      return Bad(path, size, "truncated: the 8-byte header (rows, dim) is incomplete");
    }
    const uint32_t rows = LoadLittleEndian<uint32_t>(head);
    const uint32_t dim = LoadLittleEndian<uint32_t>(head + 4);
    if (dim == 0 || dim > (1u << 20)) return Bad(path, 4, absl::StrCat("bad dimension ", dim));
    reader->dim_ = static_cast<int>(dim);
    reader->rows_ = rows;
    reader->data_offset_ = 8;
    reader->row_bytes_ = dim * ElementBytes(reader->type_);
    declared_bytes = 8 + reader->rows_ * reader->row_bytes_;
  } else {
    char prefix[10];
    if (size < 10 || !reader->in_.read(prefix, 10) || std::memcmp(prefix, kNpyMagic, 6) != 0) {
      return Bad(path, 0, "not a .npy file (bad magic)");
    }
    const int major = static_cast<unsigned char>(prefix[6]);
    int64_t header_len = LoadLittleEndian<uint16_t>(prefix + 8);
    int64_t dict_offset = 10;
    if (major >= 2) {
      char extra[2];
      if (!reader->in_.read(extra, 2)) return Bad(path, 10, "truncated .npy header");
      char len32[4];
      std::memcpy(len32, prefix + 8, 2);
      std::memcpy(len32 + 2, extra, 2);
      header_len = LoadLittleEndian<uint32_t>(len32);
      dict_offset = 12;
    }
    if (dict_offset + header_len > size) return Bad(path, size, "truncated .npy header");
    std::string dict(header_len, '\0');
    reader->in_.read(dict.data(), header_len);
    absl::StatusOr<NpyHeader> header = ParseNpyDict(dict, path);
    if (!header.ok()) return header.status();
    if (header->descr == "<f4") {
      reader->type_ = ElementType::kFloat32;
    } else if (header->descr == "<i4") {
      reader->type_ = ElementType::kInt32;
    } else if (header->descr == "<i8") {
      reader->type_ = ElementType::kInt64;
    } else {
      return Bad(path, dict_offset,
                 absl::StrCat("wrong dtype '", header->descr,
                              "': expected float32 ('<f4') vectors or int32/int64 ids"));
    }
    if (header->fortran_order) return Bad(path, dict_offset, "Fortran-order arrays unsupported");
    if (header->shape.empty() || header->shape.size() > 2) {
      return Bad(path, dict_offset, "expected a 1-D or 2-D array");
    }
    // The shape is checked before any arithmetic on it: a crafted header must neither be cut
    // down to an int (2^32 + 1 columns read as 1) nor overflow the byte count.
    const int64_t columns = header->shape.size() == 2 ? header->shape[1] : 1;
    if (columns <= 0) return Bad(path, dict_offset, "zero columns");
    if (columns > (1 << 20)) return Bad(path, dict_offset, absl::StrCat("bad dimension ", columns));
    reader->rows_ = header->shape[0];
    reader->dim_ = static_cast<int>(columns);
    reader->data_offset_ = dict_offset + header_len;
    reader->row_bytes_ = reader->dim_ * ElementBytes(reader->type_);
    if (reader->rows_ > (size - reader->data_offset_) / reader->row_bytes_) {
      return Bad(path, size,
                 absl::StrCat("truncated: the header declares ", reader->rows_, " rows of ",
                              reader->dim_, ", the file ends here"));
    }
    declared_bytes = reader->data_offset_ + reader->rows_ * reader->row_bytes_;
  }
  if (!HasRowHeaders(*format)) {
    if (size < declared_bytes) {
      return Bad(path, size,
                 absl::StrCat("truncated: the header declares ", reader->rows_, " rows of ",
                              reader->dim_, " (", declared_bytes, " bytes), the file ends here"));
    }
    if (size > declared_bytes) {
      return Bad(path, declared_bytes,
                 absl::StrCat(size - declared_bytes, " bytes after the declared ", reader->rows_,
                              " rows"));
    }
  }
  if (options.expected_dim && *options.expected_dim != reader->dim_) {
    return Bad(path, 0,
               absl::StrCat("wrong dimension: the file has ", reader->dim_, ", expected ",
                            *options.expected_dim));
  }
  return reader;
}

absl::Status MatrixReader::ReadRaw(int64_t rows, std::vector<char>* raw) {
  const int64_t offset = data_offset_ + next_row_ * row_bytes_;
  raw->resize(rows * row_bytes_);
  in_.clear();  // a failed or ranged read before must not stop this one
  in_.seekg(offset);
  if (!in_.read(raw->data(), raw->size())) {
    return Bad(path_, offset + in_.gcount(), "truncated: the file ended while reading");
  }
  if (HasRowHeaders(format_)) {
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t row_dim = LoadLittleEndian<int32_t>(raw->data() + r * row_bytes_);
      if (row_dim != dim_) {
        return Bad(path_, offset + r * row_bytes_,
                   absl::StrCat("row ", next_row_ + r, " has dimension ", row_dim,
                                ", the file's first row has ", dim_));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status MatrixReader::CheckFloatRows(std::span<float> rows, int64_t first_row) {
  const int64_t header = HasRowHeaders(format_) ? 4 : 0;
  const int64_t count = static_cast<int64_t>(rows.size()) / dim_;
  for (int64_t r = 0; r < count; ++r) {
    std::span<float> row = rows.subspan(r * dim_, dim_);
    const int64_t row_offset = data_offset_ + (first_row + r) * row_bytes_;
    double norm2 = 0;
    for (int c = 0; c < dim_; ++c) {
      if (options_.reject_non_finite && !std::isfinite(row[c])) {
        return Bad(path_, row_offset + header + c * ElementBytes(type_),
                   absl::StrCat("row ", first_row + r, " column ", c, " is ",
                                std::isnan(row[c]) ? "NaN" : "infinite"));
      }
      norm2 += static_cast<double>(row[c]) * row[c];
    }
    if (norm2 == 0 && (options_.reject_zero_vectors || options_.normalize)) {
      return Bad(path_, row_offset,
                 absl::StrCat("row ", first_row + r,
                              " is a zero vector, which the inner-product metric cannot use"));
    }
    if (options_.normalize) {
      // Divided in double: 1/norm of a tiny (denormal) row overflows float to infinity.
      const double norm = std::sqrt(norm2);
      for (float& x : row) x = static_cast<float>(x / norm);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MatrixReader::ReadFloats(int64_t max_rows, std::vector<float>* out) {
  const int64_t rows = std::min(max_rows, rows_ - next_row_);
  if (rows <= 0) return 0;
  std::vector<char> raw;
  if (absl::Status s = ReadRaw(rows, &raw); !s.ok()) return s;
  const size_t start = out->size();
  out->resize(start + rows * dim_);
  const int64_t header = HasRowHeaders(format_) ? 4 : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const char* src = raw.data() + r * row_bytes_ + header;
    float* dst = out->data() + start + r * dim_;
    for (int c = 0; c < dim_; ++c) {
      switch (type_) {
        case ElementType::kFloat32:
          dst[c] = LoadLittleEndian<float>(src + 4 * c);
          break;
        case ElementType::kInt32:
          dst[c] = static_cast<float>(LoadLittleEndian<int32_t>(src + 4 * c));
          break;
        case ElementType::kInt64:
          dst[c] = static_cast<float>(LoadLittleEndian<int64_t>(src + 8 * c));
          break;
        case ElementType::kUint8:
          dst[c] = static_cast<unsigned char>(src[c]);
          break;
      }
    }
  }
  if (absl::Status s =
          CheckFloatRows(std::span<float>(out->data() + start, rows * dim_), next_row_);
      !s.ok()) {
    return s;
  }
  next_row_ += rows;
  return rows;
}

absl::StatusOr<int64_t> MatrixReader::ReadInts(int64_t max_rows, std::vector<int64_t>* out) {
  if (type_ == ElementType::kFloat32) {
    return Bad(path_, data_offset_, "wrong dtype: float32 data where integers were expected");
  }
  const int64_t rows = std::min(max_rows, rows_ - next_row_);
  if (rows <= 0) return 0;
  std::vector<char> raw;
  if (absl::Status s = ReadRaw(rows, &raw); !s.ok()) return s;
  const int64_t header = HasRowHeaders(format_) ? 4 : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const char* src = raw.data() + r * row_bytes_ + header;
    for (int c = 0; c < dim_; ++c) {
      switch (type_) {
        case ElementType::kInt32:
          out->push_back(LoadLittleEndian<int32_t>(src + 4 * c));
          break;
        case ElementType::kInt64:
          out->push_back(LoadLittleEndian<int64_t>(src + 8 * c));
          break;
        default:
          out->push_back(static_cast<unsigned char>(src[c]));
          break;
      }
    }
  }
  next_row_ += rows;
  return rows;
}

absl::Status MatrixReader::SeekToRow(int64_t row) {
  if (row < 0 || row > rows_) {
    return absl::OutOfRangeError(
        absl::StrCat(path_.string(), ": row ", row, " is outside the file's ", rows_, " rows"));
  }
  next_row_ = row;  // ReadRaw seeks to next_row_'s byte offset before every read
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MatrixReader::ReadFloatsAt(int64_t first_row, int64_t max_rows,
                                                   std::vector<float>* out) {
  if (absl::Status s = SeekToRow(first_row); !s.ok()) return s;
  return ReadFloats(max_rows, out);
}

absl::StatusOr<int64_t> MatrixReader::ReadIntsAt(int64_t first_row, int64_t max_rows,
                                                 std::vector<int64_t>* out) {
  if (absl::Status s = SeekToRow(first_row); !s.ok()) return s;
  return ReadInts(max_rows, out);
}

absl::StatusOr<FloatMatrix> ReadFloatMatrix(const fs::path& path, const ReadOptions& options) {
  absl::StatusOr<std::unique_ptr<MatrixReader>> reader = MatrixReader::Open(path, options);
  if (!reader.ok()) return reader.status();
  FloatMatrix matrix;
  matrix.dim = (*reader)->dim();
  matrix.data.reserve((*reader)->rows() * matrix.dim);
  absl::StatusOr<int64_t> rows = (*reader)->ReadFloats((*reader)->rows(), &matrix.data);
  if (!rows.ok()) return rows.status();
  matrix.rows = *rows;
  return matrix;
}

absl::StatusOr<IntMatrix> ReadIntMatrix(const fs::path& path) {
  absl::StatusOr<std::unique_ptr<MatrixReader>> reader = MatrixReader::Open(path);
  if (!reader.ok()) return reader.status();
  IntMatrix matrix;
  matrix.dim = (*reader)->dim();
  absl::StatusOr<int64_t> rows = (*reader)->ReadInts((*reader)->rows(), &matrix.data);
  if (!rows.ok()) return rows.status();
  matrix.rows = *rows;
  return matrix;
}

absl::StatusOr<std::unique_ptr<MatrixWriter>> MatrixWriter::Create(const fs::path& path, int dim) {
  absl::StatusOr<EmbeddingFormat> format = FormatFromPath(path);
  if (!format.ok()) return format.status();
  if (dim <= 0) return absl::InvalidArgumentError("dimension must be positive");
  std::unique_ptr<MatrixWriter> writer(new MatrixWriter());
  writer->path_ = path;
  writer->format_ = *format;
  writer->dim_ = dim;
  // Embeddings are gallery data: the file is created owner-only (0600, whatever the umask),
  // and one that exists already is narrowed to 0600 before it is truncated and rewritten.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat(path.string(), ": cannot create: ", std::strerror(errno)));
  }
  ::close(fd);
  if (absl::Status s = MakeOwnerOnly(path); !s.ok()) return s;
  writer->out_.open(path, std::ios::binary | std::ios::trunc);
  if (!writer->out_) return absl::InternalError(absl::StrCat(path.string(), ": cannot create"));
  if (absl::Status s = writer->WriteHeader(); !s.ok()) return s;
  return writer;
}

MatrixWriter::~MatrixWriter() {
  if (!closed_) (void)Close();
}

absl::Status MatrixWriter::WriteHeader() {
  out_.seekp(0);
  if (IsBin(format_)) {
    const uint32_t head[2] = {static_cast<uint32_t>(rows_), static_cast<uint32_t>(dim_)};
    out_.write(reinterpret_cast<const char*>(head), sizeof(head));
  } else if (format_ == EmbeddingFormat::kNpy) {
    std::string dict = absl::StrFormat(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows_, dim_);
    dict.resize(kNpyHeaderBytes - 10 - 1, ' ');
    dict += '\n';
    const uint16_t length = static_cast<uint16_t>(dict.size());
    out_.write(kNpyMagic, 6);
    out_.put(1);
    out_.put(0);
    out_.write(reinterpret_cast<const char*>(&length), 2);
    out_.write(dict.data(), dict.size());
  }
  out_.seekp(0, std::ios::end);
  if (!out_) return absl::InternalError(absl::StrCat(path_.string(), ": write failed"));
  return absl::OkStatus();
}

absl::Status MatrixWriter::AppendRaw(const char* data, int64_t rows, int64_t element_bytes) {
  const int64_t bytes = dim_ * element_bytes;
  for (int64_t r = 0; r < rows; ++r) {
    if (HasRowHeaders(format_)) {
      const int32_t dim = dim_;
      out_.write(reinterpret_cast<const char*>(&dim), 4);
    }
    out_.write(data + r * bytes, bytes);
  }
  rows_ += rows;
  if (!out_) return absl::InternalError(absl::StrCat(path_.string(), ": write failed"));
  return absl::OkStatus();
}

absl::Status MatrixWriter::AppendFloats(std::span<const float> rows) {
  if (rows.size() % dim_ != 0) return absl::InvalidArgumentError("partial row");
  const int64_t count = rows.size() / dim_;
  switch (TypeOfFormat(format_)) {
    case ElementType::kFloat32:
      return AppendRaw(reinterpret_cast<const char*>(rows.data()), count, 4);
    case ElementType::kUint8: {
      std::vector<uint8_t> bytes(rows.begin(), rows.end());
      return AppendRaw(reinterpret_cast<const char*>(bytes.data()), count, 1);
    }
    default: {
      std::vector<int32_t> ints(rows.begin(), rows.end());
      return AppendRaw(reinterpret_cast<const char*>(ints.data()), count, 4);
    }
  }
}

absl::Status MatrixWriter::AppendInts(std::span<const int64_t> rows) {
  if (rows.size() % dim_ != 0) return absl::InvalidArgumentError("partial row");
  if (TypeOfFormat(format_) == ElementType::kFloat32) {
    std::vector<float> floats(rows.begin(), rows.end());
    return AppendFloats(floats);
  }
  const int64_t count = rows.size() / dim_;
  if (TypeOfFormat(format_) == ElementType::kUint8) {
    std::vector<uint8_t> bytes(rows.begin(), rows.end());
    return AppendRaw(reinterpret_cast<const char*>(bytes.data()), count, 1);
  }
  std::vector<int32_t> ints(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < INT32_MIN || rows[i] > INT32_MAX) {
      return absl::OutOfRangeError(
          absl::StrCat(path_.string(), ": value ", rows[i], " does not fit int32"));
    }
    ints[i] = static_cast<int32_t>(rows[i]);
  }
  return AppendRaw(reinterpret_cast<const char*>(ints.data()), count, 4);
}

absl::Status MatrixWriter::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status status = WriteHeader();
  out_.close();
  if (status.ok() && !out_) status = absl::InternalError(absl::StrCat(path_.string(), ": close"));
  return status;
}

absl::Status WriteFloatMatrix(const fs::path& path, int dim, std::span<const float> data) {
  absl::StatusOr<std::unique_ptr<MatrixWriter>> writer = MatrixWriter::Create(path, dim);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = (*writer)->AppendFloats(data); !s.ok()) return s;
  return (*writer)->Close();
}

absl::Status WriteIntMatrix(const fs::path& path, int dim, std::span<const int64_t> data) {
  absl::StatusOr<std::unique_ptr<MatrixWriter>> writer = MatrixWriter::Create(path, dim);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = (*writer)->AppendInts(data); !s.ok()) return s;
  return (*writer)->Close();
}

}  // namespace probity::index
