#include "dptrain/data/image.hpp"

#include <png.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string_view>

#include "dptrain/error.hpp"
#include "dptrain/util/files.hpp"

namespace dptrain {
namespace {

// The next whitespace-separated token of a PGM header, skipping # comments.
std::string pgm_token(const std::string& bytes, std::size_t& pos) {
  while (pos < bytes.size()) {
    if (bytes[pos] == '#') {
      while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
    } else if (std::isspace(static_cast<unsigned char>(bytes[pos]))) {
      ++pos;
    } else {
      break;
    }
  }
  const std::size_t start = pos;
  while (pos < bytes.size() && !std::isspace(static_cast<unsigned char>(bytes[pos])) && bytes[pos] != '#') ++pos;
  return bytes.substr(start, pos - start);
}

int pgm_number(const std::string& bytes, std::size_t& pos, const std::string& path, const char* what) {
  const std::string token = pgm_token(bytes, pos);
  if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos || token.size() > 6) {
    throw Error(path + ": bad PGM " + what + " '" + token.substr(0, 16) + "'");
  }
  return std::stoi(token);
}

std::string size_text(std::size_t width, std::size_t height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

// Called with the header's dimensions before any pixel memory exists, so a
// header that claims a huge image costs nothing. `available` is what the rest
// of the file can hold at most.
void check_dimensions(const std::string& path, const char* format, std::size_t width, std::size_t height,
                      std::size_t expected_pixels, std::size_t available) {
  if (width == 0 || height == 0) {
    throw Error(path + ": " + format + " header: image size " + size_text(width, height) + ", expected at least 1x1");
  }
  const std::size_t pixels = width * height;  // both below 2^32: no overflow
  if (expected_pixels > 0 && pixels != expected_pixels) {
    throw Error(path + ": " + format + " header: a " + size_text(width, height) + " image, but the network takes " +
                std::to_string(expected_pixels) + " pixels (28x28 for MNIST)");
  }
  if (pixels > kMaxImagePixels) {
    throw Error(path + ": " + format + " header: image size " + size_text(width, height) + " is larger than the " +
                std::to_string(kMaxImagePixels) + " pixels read at most");
  }
  if (pixels > available) {
    throw Error(path + ": truncated " + format + ": header says " + size_text(width, height) + " = " +
                std::to_string(pixels) + " pixels, the file holds at most " + std::to_string(available));
  }
}

GrayImage read_pgm(const std::string& path, const std::string& bytes, std::size_t expected_pixels) {
  std::size_t pos = 0;
  const std::string magic = pgm_token(bytes, pos);
  if (magic != "P2" && magic != "P5")
    throw Error(path + ": bad PGM magic '" + magic.substr(0, 16) + "', expected P2 or P5");
  const bool binary = magic == "P5";
  GrayImage image;
  image.width = pgm_number(bytes, pos, path, "width");
  image.height = pgm_number(bytes, pos, path, "height");
  const int maxval = pgm_number(bytes, pos, path, "maximum value");
  if (maxval < 1 || maxval > 255) {
    throw Error(path + ": PGM maximum value " + std::to_string(maxval) + " is not supported (expected 8-bit, 1..255)");
  }
  if (binary) {
    // Exactly one whitespace byte ends a P5 header; the pixels follow.
    if (pos >= bytes.size() || !std::isspace(static_cast<unsigned char>(bytes[pos]))) {
      throw Error(path + ": PGM header: no whitespace after the maximum value");
    }
    ++pos;
  }
  const std::size_t remaining = bytes.size() - pos;
  // P5: one byte a pixel. P2: at least a digit and a separator a pixel (none after the last).
  const std::size_t available = binary ? remaining : (remaining + 1) / 2;
  check_dimensions(path, binary ? "P5 PGM" : "P2 PGM", static_cast<std::size_t>(image.width),
                   static_cast<std::size_t>(image.height), expected_pixels, available);
  const std::size_t count = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  image.pixels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const int value = binary ? static_cast<unsigned char>(bytes[pos + i]) : pgm_number(bytes, pos, path, "pixel");
    if (value > maxval) {
      throw Error(path + ": PGM pixel " + std::to_string(i) + " is " + std::to_string(value) +
                  ", above the header's maximum value " + std::to_string(maxval));
    }
    image.pixels[i] = static_cast<std::uint8_t>(value);
  }
  if (maxval != 255) {
    for (std::uint8_t& p : image.pixels) p = static_cast<std::uint8_t>(p * 255 / maxval);
  }
  return image;
}

GrayImage read_png(const std::string& path, std::span<const std::uint8_t> bytes, std::size_t expected_pixels) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    throw Error(path + ": unreadable PNG: " + png.message);
  }
  struct Finisher {
    png_image* p;
    ~Finisher() { png_image_free(p); }
  } finisher{&png};
  if (png.format & PNG_FORMAT_FLAG_COLOR) throw Error(path + ": a colour PNG; expected 8-bit grayscale");
  if (png.format & PNG_FORMAT_FLAG_ALPHA) throw Error(path + ": a PNG with transparency; expected 8-bit grayscale");
  if (png.format & PNG_FORMAT_FLAG_LINEAR) throw Error(path + ": a 16-bit PNG; expected 8-bit grayscale");
  // Compressed pixels can be far smaller than the image: only the size limits apply.
  check_dimensions(path, "PNG", png.width, png.height, expected_pixels, kMaxImagePixels);
  GrayImage image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  png.format = PNG_FORMAT_GRAY;
  image.pixels.resize(static_cast<std::size_t>(png.width) * png.height);
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    throw Error(path + ": damaged PNG: " + png.message);
  }
  return image;
}

}  // namespace

GrayImage decode_gray_image(std::span<const std::uint8_t> bytes, const std::string& name, std::size_t expected_pixels) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.starts_with("\x89PNG")) return read_png(name, bytes, expected_pixels);
  if (text.starts_with("P5") || text.starts_with("P2")) return read_pgm(name, std::string(text), expected_pixels);
  throw Error(name + ": not a PGM (P2/P5) or PNG image");
}

GrayImage read_gray_image(const std::string& path, std::size_t expected_pixels) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return decode_gray_image({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, path, expected_pixels);
}

bool looks_dark_on_light(const GrayImage& image) {
  long sum = 0, count = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (y != 0 && x != 0 && y != image.height - 1 && x != image.width - 1) continue;
      sum += image.pixels[static_cast<std::size_t>(y) * image.width + x];
      ++count;
    }
  }
  return count > 0 && sum > 128 * count;
}

}  // namespace dptrain
