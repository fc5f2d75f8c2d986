#pragma once
// RAII handles and small helpers over the HDF5 C API. Every call is checked;
// failures become dptrain::Error with the file, the object and HDF5's own
// innermost reason ("truncated file: eof = ...", "file signature not found").
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dptrain::h5 {

// An owned hid_t, closed with the matching H5*close when it goes out of scope.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  void reset();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Turns off HDF5's automatic stack printing; errors are reported by us, once.
void silence_automatic_error_printing();

// HDF5's innermost error message for the failure that just happened.
std::string last_error();

Handle open_file(const std::string& path);  // read-only
// Read-only through the MPI-IO driver: collective over comm, every rank opens.
Handle open_file_parallel(const std::string& path, MPI_Comm comm);
Handle create_file(const std::string& path);  // fails if it exists
// The same in the HDF5 1.10 file format, whose superblock (version 3), object
// headers and B-trees carry checksums: HDF5 verifies them before decoding,
// so a damaged file fails cleanly instead of reaching libhdf5's decoders,
// some of which overrun buffers on malformed metadata (found by fuzzing).
Handle create_checksummed_file(const std::string& path);
// The superblock version of an HDF5 file at offset 0 (0-1: no checksums,
// 2-3: checksummed metadata), read directly, before HDF5 parses anything; an
// Error naming the file when it is no HDF5 file.
int superblock_version(const std::string& path);
// For a file of superblock version 2 or later, read directly before HDF5
// parses it: Errors naming the file unless the root group's object header
// (and the superblock extension's, if any) is a version 2 header, signature
// "OHDR", whose checksum HDF5 verifies before decoding a byte of it. A v2
// superblock only checksums itself: it may point at v1 headers, which have none.
void require_checksummed_root(const std::string& path);
// The same for every object on `object_path` ("/model/layer_0/weight"), each
// reached only through hard links, checked from the root down before HDF5
// decodes it; stops quietly at the first name that does not exist (the
// caller's open then says which).
void require_checksummed_path(hid_t file, const std::string& object_path, const std::string& path);
void flush(hid_t file, const std::string& path);
Handle open_group(hid_t loc, const std::string& name, const std::string& file);
Handle create_group(hid_t loc, const std::string& name, const std::string& file);
bool exists(hid_t loc, const std::string& name);
Handle open_dataset(hid_t file, const std::string& name, const std::string& file_path);

struct DatasetInfo {
  H5T_class_t type_class = H5T_NO_CLASS;
  std::size_t type_size = 0;
  bool is_signed = false;
  std::vector<hsize_t> dims;
  std::string type_name() const;    // "uint8", "float32", "int64", ...
  std::string dims_string() const;  // "[60000,28,28]"
};
DatasetInfo describe(hid_t dataset);

// Writes a whole dataset from memory (chunked along the first axis if chunk_rows > 0).
void write_dataset(hid_t loc, const std::string& name, hid_t mem_type, hid_t file_type,
                   const std::vector<hsize_t>& dims, const void* data, hsize_t chunk_rows, const std::string& file);
// Checks, without reading it, that `name` is a float32 dataset of exactly
// `dims` whose stored size (when not compressed) is what that shape needs.
void check_float32_dataset(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
                           const std::string& file);
// Reads a whole float32 dataset, checking its shape.
std::vector<float> read_floats(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
                               const std::string& file);

void write_attribute(hid_t loc, const std::string& name, const std::string& value);
void write_attribute(hid_t loc, const std::string& name, std::int64_t value);
void write_attribute(hid_t loc, const std::string& name, double value);
void write_attribute(hid_t loc, const std::string& name, const std::vector<std::int64_t>& values);

bool has_attribute(hid_t loc, const std::string& name);
std::string read_string_attribute(hid_t loc, const std::string& name, const std::string& where);
std::int64_t read_int_attribute(hid_t loc, const std::string& name, const std::string& where);
double read_double_attribute(hid_t loc, const std::string& name, const std::string& where);
std::vector<std::int64_t> read_ints_attribute(hid_t loc, const std::string& name, const std::string& where);

}  // namespace dptrain::h5
