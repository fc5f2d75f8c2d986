#pragma once
// Single grayscale images for `dptrain predict`: PGM (P2 and P5) and PNG.
#include <cstdint>
#include <string>
#include <vector>

namespace dptrain {

struct GrayImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 0 = black, 255 = white
};

// Reads an 8-bit grayscale PGM or PNG; anything else (colour, 16-bit, another
// format, a damaged file) is an Error naming the file and what it is.
GrayImage read_gray_image(const std::string& path);

// MNIST digits are light on a dark background; a drawing is usually dark on
// light. True when the image's border is mostly light.
bool looks_dark_on_light(const GrayImage& image);

}  // namespace dptrain
