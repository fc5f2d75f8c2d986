// Images for `predict`: PGM (P2, P5) and PNG from memory, with and without
// an expected size (the network's 784 inputs).
#include "dptrain/data/image.hpp"
#include "dptrain/error.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {

int image_input(const std::uint8_t* data, std::size_t size) {
  for (std::size_t expected : {std::size_t{0}, std::size_t{784}}) {
    try {
      const GrayImage image = decode_gray_image({data, size}, "fuzz-image", expected);
      const std::size_t pixels = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
      if (pixels != image.pixels.size() || (expected > 0 && pixels != expected)) __builtin_trap();
      looks_dark_on_light(image);
    } catch (const Error&) {
    }
  }
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(image_input)
