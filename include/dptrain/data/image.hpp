#pragma once
// Single grayscale images for `dptrain predict`: PGM (P2 and P5) and PNG.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dptrain {

struct GrayImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 0 = black, 255 = white
};

// The largest image read at all when the caller names no expected size:
// 4096 x 4096, far above any network input, far below a harmful allocation.
inline constexpr std::size_t kMaxImagePixels = std::size_t{1} << 24;

// Reads an 8-bit grayscale PGM or PNG; anything else (colour, 16-bit, another
// format, a damaged file) is an Error naming the file and what it is.
// expected_pixels > 0: the header's width x height must be exactly that
// (the network's input size), checked before any pixel memory is allocated.
GrayImage read_gray_image(const std::string& path, std::size_t expected_pixels = 0);

// The same from bytes in memory; `name` is what errors call the image.
GrayImage decode_gray_image(std::span<const std::uint8_t> bytes, const std::string& name,
                            std::size_t expected_pixels = 0);

// MNIST digits are light on a dark background; a drawing is usually dark on
// light. True when the image's border is mostly light.
bool looks_dark_on_light(const GrayImage& image);

}  // namespace dptrain
