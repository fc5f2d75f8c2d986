#pragma once
#include <string>
#include <string_view>

namespace dptrain {

// Every file dptrain reads is checked with stat() before it is opened: open()
// on a FIFO blocks until a writer comes, so a named pipe given as --data or
// --config would hang every rank, and a directory opened as a stream fails
// with a libstdc++ message that names no path. The Error names the path and
// what it is: "no such file", "a directory", "a FIFO (named pipe)", ...
void require_regular_file(const std::string& path);

// Writes `text` to `path` whole or not at all: into a temporary file beside
// it, renamed over `path` once written (a full disk leaves no empty or
// half-written file behind, and a reader never sees one). Throws an Error
// naming the path and the reason.
void write_file_atomically(const std::string& path, std::string_view text);
// What a temporary name of write_file_atomically holds: a writer killed
// mid-write leaves PATH.partial-XXXXXX, which RunFolder::prepare removes.
inline constexpr const char* kPartialMarker = ".partial-";

}  // namespace dptrain
