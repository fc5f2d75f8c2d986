// Image files for `predict` from an adversary: sizes are checked against the
// network and the file's length before anything is allocated, and pixels
// against the header's maximum value, in both PGM encodings.
#include <gtest/gtest.h>

#include <string>

#include "dptrain/data/image.hpp"
#include "dptrain/error.hpp"

namespace dptrain {
namespace {

std::string error_of(const std::string& bytes, std::size_t expected_pixels = 0) {
  try {
    decode_gray_image({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, "x.pgm", expected_pixels);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

GrayImage decode(const std::string& bytes, std::size_t expected_pixels = 0) {
  return decode_gray_image({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, "x.pgm",
                           expected_pixels);
}

TEST(HostileImages, AHugeHeaderIsRefusedBeforeAllocating) {
  // Under ASan an attempt to allocate 10^12 bytes would abort the test.
  const std::string p5 = "P5\n999999 999999\n255\n" + std::string(16, '\0');
  EXPECT_NE(error_of(p5, 784).find("x.pgm: P5 PGM header: a 999999x999999 image, but the network takes 784 pixels"),
            std::string::npos)
      << error_of(p5, 784);
  EXPECT_NE(error_of(p5).find("image size 999999x999999 is larger than the"), std::string::npos) << error_of(p5);
  const std::string p2 = "P2\n999999 999999\n255\n1 2 3\n";
  EXPECT_NE(error_of(p2, 784).find("a 999999x999999 image, but the network takes 784 pixels"), std::string::npos);
}

TEST(HostileImages, AHeaderLargerThanTheFileIsTruncation) {
  EXPECT_NE(error_of("P5\n28 28\n255\n" + std::string(700, '\0'), 784)
                .find("x.pgm: truncated P5 PGM: header says 28x28 = 784 pixels, the file holds at most 700"),
            std::string::npos);
  EXPECT_NE(error_of("P2\n2 2\n255\n1 2\n", 4).find("truncated P2 PGM"), std::string::npos)
      << error_of("P2\n2 2\n255\n1 2\n", 4);
  EXPECT_NE(error_of("P5\n0 5\n255\n"), "no error");
}

TEST(HostileImages, PixelsAboveMaxvalAreRefusedInBothEncodings) {
  const std::string binary = std::string("P5\n2 2\n15\n") + '\x01' + '\x02' + '\x10' + '\x03';
  EXPECT_NE(error_of(binary).find("x.pgm: PGM pixel 2 is 16, above the header's maximum value 15"), std::string::npos)
      << error_of(binary);
  EXPECT_NE(error_of("P2\n2 2\n15\n1 2 16 3\n").find("PGM pixel 2 is 16, above the header's maximum value 15"),
            std::string::npos);
}

TEST(HostileImages, ValidImagesStillRead) {
  const GrayImage binary = decode(std::string("P5\n# c\n2 1\n15\n") + '\x0f' + '\x00', 2);
  EXPECT_EQ(binary.width, 2);
  EXPECT_EQ(binary.pixels, (std::vector<std::uint8_t>{255, 0}));
  const GrayImage text = decode("P2 2 1 255 7 200", 2);
  EXPECT_EQ(text.pixels, (std::vector<std::uint8_t>{7, 200}));
}

TEST(HostileImages, MalformedHeadersAreClearErrors) {
  EXPECT_NE(error_of("P5 28").find("bad PGM height ''"), std::string::npos) << error_of("P5 28");
  EXPECT_NE(error_of("P5x 1 1 255 a").find("bad PGM magic 'P5x'"), std::string::npos);
  EXPECT_NE(error_of("P5 1 1 255").find("no whitespace after the maximum value"), std::string::npos);
  EXPECT_NE(error_of("P5 1 1 256 a").find("maximum value 256 is not supported"), std::string::npos);
  EXPECT_NE(error_of("\x89PNG\r\n\x1a\n").find("x.pgm: unreadable PNG"), std::string::npos);
}

}  // namespace
}  // namespace dptrain
