#include "dptrain/util/hdf5.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "dptrain/error.hpp"
#include "dptrain/util/files.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain::h5 {
namespace {

herr_t innermost_message(unsigned depth, const H5E_error2_t* entry, void* out) {
  // The walk goes from the innermost frame outwards; the first frame says most.
  if (depth == 0 && entry->desc != nullptr) *static_cast<std::string*>(out) = entry->desc;
  return 0;
}

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) throw Error(what + ": " + last_error());
  return id;
}

void check_status(herr_t status, const std::string& what) {
  if (status < 0) throw Error(what + ": " + last_error());
}

// H5Tget_size and H5Sget_simple_extent_npoints report failure as 0 and -1.
std::size_t checked_type_size(hid_t type, const std::string& what) {
  const std::size_t size = H5Tget_size(type);
  if (size == 0) throw Error(what + ": cannot read the type's size: " + last_error());
  return size;
}

hssize_t checked_points(hid_t space, const std::string& what) {
  const hssize_t points = H5Sget_simple_extent_npoints(space);
  if (points < 0) throw Error(what + ": cannot read the shape: " + last_error());
  return points;
}

// A string attribute longer than this is not one dptrain wrote (the largest,
// config, is about 1 KB): refused before allocating its size.
constexpr std::size_t kMaxStringAttributeBytes = std::size_t{1} << 24;
// An integer attribute with more values than this is not one dptrain wrote (layers has a few).
constexpr hssize_t kMaxIntAttributeValues = 1 << 16;

}  // namespace

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_ != nullptr) closer_(id_);
  id_ = -1;
}

void silence_automatic_error_printing() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string last_error() {
  std::string message = "unknown HDF5 error";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_message, &message);
  H5Eclear2(H5E_DEFAULT);
  // System-call failures read "unable to open file: name = ..., errno = 2,
  // error message = 'No such file or directory', ...": keep the two halves that matter.
  const std::string marker = "error message = '";
  const std::size_t reason = message.find(marker);
  if (reason != std::string::npos) {
    const std::size_t start = reason + marker.size();
    const std::size_t end = message.find('\'', start);
    message = message.substr(0, message.find_first_of(":,")) + ": " + message.substr(start, end - start);
  }
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message;
}

namespace {

// File access without HDF5's file locks. dptrain never changes a file that
// another process may read: it reads finished files and writes new ones under
// unique temporary names, published by rename. The locks would only add
// failures: on parallel file systems without lock support ("unable to lock
// file") and whenever another program has the data file open for writing.
Handle unlocked_access(const std::string& path) {
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), path), H5Pclose);
  check_status(H5Pset_file_locking(fapl, false, true), path + ": cannot turn file locking off");
  return fapl;
}

}  // namespace

Handle open_file(const std::string& path) {
  require_regular_file(path);
  const Handle fapl = unlocked_access(path);
  return {check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), path + ": cannot open as HDF5"), H5Fclose};
}

Handle open_file_parallel(const std::string& path, MPI_Comm comm) {
  require_regular_file(path);
  const Handle fapl = unlocked_access(path);
  check_status(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), path + ": cannot set up MPI-IO");
  return {check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), path + ": cannot open as HDF5"), H5Fclose};
}

Handle create_file(const std::string& path) {
  const Handle fapl = unlocked_access(path);
  return {check(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl), path + ": cannot create HDF5 file"),
          H5Fclose};
}

Handle create_checksummed_file(const std::string& path) {
  const Handle fapl = unlocked_access(path);
  check_status(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST),
               path + ": cannot ask for the checksummed file format");
  return {check(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl), path + ": cannot create HDF5 file"),
          H5Fclose};
}

int superblock_version(const std::string& path) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  char head[9] = {};
  in.read(head, sizeof head);
  static const char signature[] = "\x89HDF\r\n\x1a\n";
  if (in.gcount() < 9 || std::memcmp(head, signature, 8) != 0) {
    throw Error(path + ": not an HDF5 file (no HDF5 signature at its start; " + std::to_string(in.gcount()) +
                " bytes read)");
  }
  return static_cast<unsigned char>(head[8]);
}

namespace {

// The fields of a version 2 or 3 superblock that locate the object headers.
struct Superblock {
  haddr_t base = 0;       // addresses in the file are relative to it
  haddr_t extension = 0;  // HADDR_UNDEF when there is none
  haddr_t root = 0;       // the root group's object header
};

std::uint64_t little_endian(const unsigned char* bytes, int size) {
  std::uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

std::vector<unsigned char> read_at(const std::string& path, std::uint64_t offset, std::size_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<unsigned char> bytes(size);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  bytes.resize(in ? size : static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return bytes;
}

// Version 2 and 3 superblocks: signature (8), version, size of offsets, size
// of lengths, flags, then base, extension, end-of-file and root addresses.
Superblock read_superblock(const std::string& path) {
  const std::vector<unsigned char> head = read_at(path, 0, 12 + 4 * 8);
  const int offsets = head.size() > 9 ? head[9] : 0;
  if (head.size() < 12 || head[8] < 2 || (offsets != 4 && offsets != 8) ||
      head.size() < 12 + 4 * static_cast<std::size_t>(offsets)) {
    throw Error(path + ": not an HDF5 file with a version 2 or later superblock of 4- or 8-byte addresses");
  }
  auto field = [&](int i) {
    const std::uint64_t v = little_endian(head.data() + 12 + i * offsets, offsets);
    return v == (offsets == 8 ? ~std::uint64_t{0} : std::uint64_t{0xffffffff}) ? HADDR_UNDEF : haddr_t{v};
  };
  return {field(0), field(1), field(3)};
}

void require_ohdr(const std::string& path, const Superblock& sb, haddr_t address, const std::string& what) {
  static const unsigned char signature[] = {'O', 'H', 'D', 'R'};
  const std::vector<unsigned char> bytes =
      address == HADDR_UNDEF ? std::vector<unsigned char>{} : read_at(path, sb.base + address, 4);
  if (bytes.size() != 4 || !std::equal(bytes.begin(), bytes.end(), signature)) {
    throw Error(path + ": the object header of " + what + " (at byte " +
                (address == HADDR_UNDEF ? std::string("undefined") : std::to_string(address)) +
                ") is not a checksummed version 2 header: the file was not written by dptrain, or is damaged");
  }
}

}  // namespace

void require_checksummed_root(const std::string& path) {
  const Superblock sb = read_superblock(path);
  require_ohdr(path, sb, sb.root, "the root group");
  if (sb.extension != HADDR_UNDEF) require_ohdr(path, sb, sb.extension, "the superblock extension");
}

void require_checksummed_path(hid_t file, const std::string& object_path, const std::string& path) {
  const Superblock sb = read_superblock(path);
  std::string prefix;
  for (std::size_t from = 1; from <= object_path.size();) {
    const std::size_t slash = std::min(object_path.find('/', from), object_path.size());
    prefix = object_path.substr(0, slash);
    from = slash + 1;
    const htri_t found = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    if (found <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    H5L_info_t link;
    check_status(H5Lget_info(file, prefix.c_str(), &link, H5P_DEFAULT), path + ": cannot read link " + prefix);
    if (link.type != H5L_TYPE_HARD) {
      throw Error(path + ": " + prefix +
                  " is a soft or external link, expected the object itself (as dptrain "
                  "writes it)");
    }
    require_ohdr(path, sb, link.u.address, prefix);
  }
}

void flush(hid_t file, const std::string& path) {
  check_status(H5Fflush(file, H5F_SCOPE_GLOBAL), path + ": cannot flush");
}

Handle open_group(hid_t loc, const std::string& name, const std::string& file) {
  if (!exists(loc, name)) throw Error(file + ": group " + name + " is missing");
  return {check(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), file + ": cannot open group " + name), H5Gclose};
}

Handle create_group(hid_t loc, const std::string& name, const std::string& file) {
  return {check(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                file + ": cannot create group " + name),
          H5Gclose};
}

bool exists(hid_t loc, const std::string& name) {
  if (name.empty()) return false;
  // Checks each path component, as H5Lexists requires the parents to exist.
  std::size_t pos = name.front() == '/' ? 1 : 0;
  while (true) {
    const std::size_t slash = name.find('/', pos);
    const std::string prefix = name.substr(0, slash);
    const htri_t found = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
    if (found <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

Handle open_dataset(hid_t file, const std::string& name, const std::string& file_path) {
  if (!exists(file, name)) throw Error(file_path + ": dataset " + name + " is missing");
  return {check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), file_path + ": cannot open dataset " + name), H5Dclose};
}

std::string DatasetInfo::type_name() const {
  const std::string bits = std::to_string(type_size * 8);
  if (type_class == H5T_INTEGER) return (is_signed ? "int" : "uint") + bits;
  if (type_class == H5T_FLOAT) return "float" + bits;
  return "non-numeric type";
}

std::string DatasetInfo::dims_string() const { return "[" + join(dims, ",") + "]"; }

DatasetInfo describe(hid_t dataset) {
  DatasetInfo info;
  Handle type(check(H5Dget_type(dataset), "cannot read a dataset's type"), H5Tclose);
  info.type_class = H5Tget_class(type);
  if (info.type_class == H5T_NO_CLASS) throw Error("cannot read a dataset's type class: " + last_error());
  info.type_size = checked_type_size(type, "a dataset's type");
  if (info.type_class == H5T_INTEGER) {
    const H5T_sign_t sign = H5Tget_sign(type);
    if (sign == H5T_SGN_ERROR) throw Error("cannot read a dataset's signedness: " + last_error());
    info.is_signed = sign == H5T_SGN_2;
  }
  Handle space(check(H5Dget_space(dataset), "cannot read a dataset's shape"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) throw Error("cannot read a dataset's rank: " + last_error());
  info.dims.resize(static_cast<std::size_t>(rank));
  if (H5Sget_simple_extent_dims(space, info.dims.data(), nullptr) < 0) {
    throw Error("cannot read a dataset's dimensions: " + last_error());
  }
  return info;
}

void write_dataset(hid_t loc, const std::string& name, hid_t mem_type, hid_t file_type,
                   const std::vector<hsize_t>& dims, const void* data, hsize_t chunk_rows, const std::string& file) {
  const std::string what = file + ": cannot write dataset " + name;
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), what), H5Sclose);
  Handle create(check(H5Pcreate(H5P_DATASET_CREATE), what), H5Pclose);
  // No modification times in the file: converting the same data twice gives the same bytes.
  check_status(H5Pset_obj_track_times(create, false), what);
  if (chunk_rows > 0 && !dims.empty() && dims[0] > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min(chunk_rows, dims[0]);
    check_status(H5Pset_chunk(create, static_cast<int>(chunk.size()), chunk.data()), what);
  }
  Handle dataset(check(H5Dcreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, create, H5P_DEFAULT), what),
                 H5Dclose);
  check_status(H5Dwrite(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), what);
}

namespace {

// The checks of check_float32_dataset on an open dataset; returns the number of values.
std::size_t check_float32(hid_t dataset, const std::string& name, const std::vector<hsize_t>& dims,
                          const std::string& file) {
  const DatasetInfo info = describe(dataset);
  if (info.type_class != H5T_FLOAT || info.type_size != 4 || info.dims != dims) {
    DatasetInfo expected{H5T_FLOAT, 4, false, dims};
    throw Error(file + ": dataset " + name + " is " + info.type_name() + " " + info.dims_string() +
                ", expected float32 " + expected.dims_string());
  }
  std::size_t count = 1;
  for (hsize_t d : dims) count *= d;
  // Uncompressed data occupies exactly its size in the file: anything else is
  // a crafted or damaged header (HDF5 would fill the gap or fail later).
  const std::string what = file + ": dataset " + name;
  Handle create(check(H5Dget_create_plist(dataset), what + ": cannot read its creation properties"), H5Pclose);
  // Filters are refused: dptrain writes none, and a compressed dataset's
  // size is not bounded by the file's (callers bound allocations by it).
  const int filters = H5Pget_nfilters(create);
  if (filters < 0) throw Error(what + ": cannot read its filters: " + last_error());
  if (filters > 0) {
    throw Error(what + " is stored through " + std::to_string(filters) +
                " HDF5 filter(s) (compressed?), expected plain float32 as dptrain writes it (h5repack -f NONE "
                "rewrites the file uncompressed)");
  }
  const hsize_t stored = H5Dget_storage_size(dataset);
  if (stored != count * sizeof(float)) {
    throw Error(what + " stores " + std::to_string(stored) + " bytes, expected " +
                std::to_string(count * sizeof(float)) + " for float32 " + info.dims_string() +
                " (the file is damaged or was edited)");
  }
  return count;
}

}  // namespace

void check_float32_dataset(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
                           const std::string& file) {
  Handle dataset = open_dataset(loc, name, file);
  check_float32(dataset, name, dims, file);
}

std::vector<float> read_floats(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
                               const std::string& file) {
  Handle dataset = open_dataset(loc, name, file);
  std::vector<float> values(check_float32(dataset, name, dims, file));
  check_status(H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
               file + ": cannot read dataset " + name);
  return values;
}

namespace {

void write_attribute_raw(hid_t loc, const std::string& name, hid_t type, hid_t space, const void* data) {
  const std::string what = "cannot write attribute " + name;
  const htri_t existing = H5Aexists(loc, name.c_str());
  check_status(existing, what);
  if (existing > 0) check_status(H5Adelete(loc, name.c_str()), what);
  Handle attr(check(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), what), H5Aclose);
  check_status(H5Awrite(attr, type, data), what);
}

Handle open_attribute(hid_t loc, const std::string& name, const std::string& where) {
  const htri_t found = H5Aexists(loc, name.c_str());
  if (found < 0) throw Error(where + ": cannot look for attribute " + name + ": " + last_error());
  if (found == 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(where + ": attribute " + name + " is missing");
  }
  return {check(H5Aopen(loc, name.c_str(), H5P_DEFAULT), where + ": cannot open attribute " + name), H5Aclose};
}

}  // namespace

void write_attribute(hid_t loc, const std::string& name, const std::string& value) {
  const std::string what = "cannot write attribute " + name;
  Handle type(check(H5Tcopy(H5T_C_S1), what), H5Tclose);
  check_status(H5Tset_size(type, std::max<std::size_t>(1, value.size())), what);
  check_status(H5Tset_strpad(type, H5T_STR_NULLPAD), what);
  Handle space(check(H5Screate(H5S_SCALAR), what), H5Sclose);
  write_attribute_raw(loc, name, type, space, value.empty() ? "" : value.data());
}

void write_attribute(hid_t loc, const std::string& name, std::int64_t value) {
  Handle space(check(H5Screate(H5S_SCALAR), "cannot write attribute " + name), H5Sclose);
  write_attribute_raw(loc, name, H5T_NATIVE_INT64, space, &value);
}

void write_attribute(hid_t loc, const std::string& name, double value) {
  Handle space(check(H5Screate(H5S_SCALAR), "cannot write attribute " + name), H5Sclose);
  write_attribute_raw(loc, name, H5T_NATIVE_DOUBLE, space, &value);
}

void write_attribute(hid_t loc, const std::string& name, const std::vector<std::int64_t>& values) {
  const hsize_t n = values.size();
  Handle space(check(H5Screate_simple(1, &n, nullptr), "cannot write attribute " + name), H5Sclose);
  write_attribute_raw(loc, name, H5T_NATIVE_INT64, space, values.data());
}

bool has_attribute(hid_t loc, const std::string& name) {
  const htri_t found = H5Aexists(loc, name.c_str());
  H5Eclear2(H5E_DEFAULT);
  return found > 0;
}

std::string read_string_attribute(hid_t loc, const std::string& name, const std::string& where) {
  const std::string what = where + ": attribute " + name;
  Handle attr = open_attribute(loc, name, where);
  Handle type(check(H5Aget_type(attr), what), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING) throw Error(what + " is not a string");
  // H5Aread writes every element: an array of strings would overrun one string's buffer.
  Handle space(check(H5Aget_space(attr), what), H5Sclose);
  const hssize_t points = checked_points(space, what);
  if (points != 1) throw Error(what + " holds " + std::to_string(points) + " values, expected one string");
  const htri_t variable = H5Tis_variable_str(type);
  check_status(variable, what);
  if (variable > 0) {
    char* text = nullptr;
    Handle mem(check(H5Tcopy(H5T_C_S1), what), H5Tclose);
    check_status(H5Tset_size(mem, H5T_VARIABLE), what);
    const H5T_cset_t charset = H5Tget_cset(type);
    if (charset == H5T_CSET_ERROR) throw Error(what + ": cannot read its character set: " + last_error());
    check_status(H5Tset_cset(mem, charset), what);  // h5py writes UTF-8; HDF5 converts no charsets
    check_status(H5Aread(attr, mem, &text), where + ": cannot read attribute " + name);
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const std::size_t size = checked_type_size(type, what);
  if (size > kMaxStringAttributeBytes) {
    throw Error(what + " is a string of " + std::to_string(size) + " bytes, expected at most " +
                std::to_string(kMaxStringAttributeBytes));
  }
  std::string value(size, '\0');
  check_status(H5Aread(attr, type, value.data()), where + ": cannot read attribute " + name);
  value.resize(value.find('\0') == std::string::npos ? value.size() : value.find('\0'));
  return value;
}

std::int64_t read_int_attribute(hid_t loc, const std::string& name, const std::string& where) {
  const std::vector<std::int64_t> values = read_ints_attribute(loc, name, where);
  if (values.size() != 1) throw Error(where + ": attribute " + name + " should hold one integer");
  return values[0];
}

double read_double_attribute(hid_t loc, const std::string& name, const std::string& where) {
  const std::string what = where + ": attribute " + name;
  Handle attr = open_attribute(loc, name, where);
  Handle type(check(H5Aget_type(attr), what), H5Tclose);
  const H5T_class_t type_class = H5Tget_class(type);
  if (type_class != H5T_FLOAT && type_class != H5T_INTEGER) throw Error(what + " is not a number");
  Handle space(check(H5Aget_space(attr), what), H5Sclose);
  if (checked_points(space, what) != 1) throw Error(what + " should hold one number");
  double value = 0;
  check_status(H5Aread(attr, H5T_NATIVE_DOUBLE, &value), where + ": cannot read attribute " + name);
  return value;
}

std::vector<std::int64_t> read_ints_attribute(hid_t loc, const std::string& name, const std::string& where) {
  const std::string what = where + ": attribute " + name;
  Handle attr = open_attribute(loc, name, where);
  Handle type(check(H5Aget_type(attr), what), H5Tclose);
  if (H5Tget_class(type) != H5T_INTEGER) throw Error(what + " is not an integer");
  Handle space(check(H5Aget_space(attr), what), H5Sclose);
  const hssize_t n = checked_points(space, what);
  if (n > kMaxIntAttributeValues) {
    throw Error(what + " holds " + std::to_string(n) + " integers, expected at most " +
                std::to_string(kMaxIntAttributeValues));
  }
  std::vector<std::int64_t> values(static_cast<std::size_t>(n));
  check_status(H5Aread(attr, H5T_NATIVE_INT64, values.data()), where + ": cannot read attribute " + name);
  return values;
}

}  // namespace dptrain::h5
