#pragma once
#include <string>

namespace dptrain {

// Every file dptrain reads is checked with stat() before it is opened: open()
// on a FIFO blocks until a writer comes, so a named pipe given as --data or
// --config would hang every rank, and a directory opened as a stream fails
// with a libstdc++ message that names no path. The Error names the path and
// what it is: "no such file", "a directory", "a FIFO (named pipe)", ...
void require_regular_file(const std::string& path);

}  // namespace dptrain
