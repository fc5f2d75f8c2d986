#include "dptrain/util/files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dptrain/error.hpp"

namespace dptrain {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace

void require_regular_file(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(status.st_mode))
    throw Error(path + ": is " + std::string(kind_of(status.st_mode)) + ", expected a file");
}

void write_file_atomically(const std::string& path, std::string_view text) {
  // mkstemp: a name no other writer (thread, rank, host) of the same path uses.
  std::string temporary = path + kPartialMarker + "XXXXXX";
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) throw Error(path + ": cannot write: " + std::strerror(errno));
  const auto fail = [&](int error) {
    std::remove(temporary.c_str());
    throw Error(path + ": cannot write: " + std::strerror(error));
  };
  std::FILE* file = ::fdopen(fd, "w");
  if (file == nullptr) {
    const int error = errno;
    ::close(fd);
    fail(error);
  }
  if (std::fwrite(text.data(), 1, text.size(), file) != text.size() || std::fflush(file) != 0) {
    const int error = errno;
    std::fclose(file);
    fail(error);
  }
  if (std::fclose(file) != 0) fail(errno);
  ::chmod(temporary.c_str(), 0644);  // mkstemp's 0600 would hide config.ini from the user's group
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail(errno);
}

}  // namespace dptrain
