#include "dptrain/util/files.hpp"

#include <sys/stat.h>

#include <cerrno>
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

}  // namespace dptrain
