#include "dptrain/data/image.hpp"

#include <png.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "dptrain/error.hpp"

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
    throw Error(path + ": bad PGM " + what + " '" + token + "'");
  }
  return std::stoi(token);
}

GrayImage read_pgm(const std::string& path, const std::string& bytes) {
  std::size_t pos = 0;
  const std::string magic = pgm_token(bytes, pos);
  GrayImage image;
  image.width = pgm_number(bytes, pos, path, "width");
  image.height = pgm_number(bytes, pos, path, "height");
  const int maxval = pgm_number(bytes, pos, path, "maximum value");
  if (maxval < 1 || maxval > 255) {
    throw Error(path + ": PGM maximum value " + std::to_string(maxval) + " is not supported (expected 8-bit, 1..255)");
  }
  const std::size_t count = static_cast<std::size_t>(image.width) * image.height;
  image.pixels.resize(count);
  if (magic == "P5") {
    ++pos;  // exactly one whitespace byte ends the header
    if (bytes.size() - std::min(pos, bytes.size()) < count) {
      throw Error(path + ": truncated PGM: " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                  " needs " + std::to_string(count) + " bytes of pixels");
    }
    for (std::size_t i = 0; i < count; ++i) image.pixels[i] = static_cast<std::uint8_t>(bytes[pos + i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      const int value = pgm_number(bytes, pos, path, "pixel");
      if (value > maxval) throw Error(path + ": PGM pixel " + std::to_string(value) + " exceeds the maximum value");
      image.pixels[i] = static_cast<std::uint8_t>(value);
    }
  }
  if (maxval != 255) {
    for (std::uint8_t& p : image.pixels) p = static_cast<std::uint8_t>(p * 255 / maxval);
  }
  return image;
}

GrayImage read_png(const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) throw Error(path + ": unreadable PNG: " + png.message);
  struct Finisher {
    png_image* p;
    ~Finisher() { png_image_free(p); }
  } finisher{&png};
  if (png.format & PNG_FORMAT_FLAG_COLOR) throw Error(path + ": a colour PNG; expected 8-bit grayscale");
  if (png.format & PNG_FORMAT_FLAG_ALPHA) throw Error(path + ": a PNG with transparency; expected 8-bit grayscale");
  if (png.format & PNG_FORMAT_FLAG_LINEAR) throw Error(path + ": a 16-bit PNG; expected 8-bit grayscale");
  GrayImage image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  png.format = PNG_FORMAT_GRAY;
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    throw Error(path + ": damaged PNG: " + png.message);
  }
  return image;
}

}  // namespace

GrayImage read_gray_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (bytes.rfind("\x89PNG", 0) == 0) return read_png(path);
  if (bytes.rfind("P5", 0) == 0 || bytes.rfind("P2", 0) == 0) return read_pgm(path, bytes);
  throw Error(path + ": not a PGM (P2/P5) or PNG image");
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
