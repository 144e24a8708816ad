#include "probity/common/file_read.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace probity::common {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

absl::Status OpenError(const std::filesystem::path& path, int error) {
  const std::string message = absl::StrCat("cannot read ", path.string(), ": ", strerror(error));
  if (error == ENOENT || error == ENOTDIR) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
  return absl::UnavailableError(message);
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rbe"));
  if (file == nullptr) return OpenError(path, errno);
  std::string bytes;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) bytes.append(buffer, n);
  // fread also returns 0 on a read error (EISDIR for a directory, EIO): only EOF is success.
  if (std::ferror(file.get())) {
    return absl::DataLossError(absl::StrCat("cannot read ", path.string(), ": read error"));
  }
  return bytes;
}

}  // namespace probity::common
