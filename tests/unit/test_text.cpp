#include <gtest/gtest.h>

#include <string>

#include "dptrain/error.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace {

TEST(Text, ControlBytesAreEscapedAndLongTextIsCut) {
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(printable(with_nul), "a\\x00b");
  EXPECT_EQ(printable("red \x1b[31m\ttab\nline\x7f"), "red \\x1b[31m\\x09tab\\x0aline\\x7f");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82");  // UTF-8 as it is
  // C1 controls (CSI is U+009B) and bytes of no character are escaped too.
  EXPECT_EQ(printable("a\xc2\x9b"
                      "31m \x9b"
                      "31m \xc2\xa0"),
            "a\\u009b31m \\x9b31m \xc2\xa0");
  EXPECT_EQ(printable("cut \xe2\x82"), "cut \\xe2\\x82");
  EXPECT_EQ(printable("\xff\xc0\x80"), "\\xff\\xc0\\x80");
  // Sequences of the right shape that are not UTF-8: overlong ESC, overlong
  // CSI, a surrogate, an overlong 4-byte form, U+110000. Their nearest
  // well-formed neighbours (U+0800, U+D7FF, U+10000, U+10FFFF) pass.
  EXPECT_EQ(printable("\xe0\x80\x9b|\xe0\x82\x9b|\xed\xa0\x80|\xf0\x80\x80\x80|\xf4\x90\x80\x80"),
            "\\xe0\\x80\\x9b|\\xe0\\x82\\x9b|\\xed\\xa0\\x80|\\xf0\\x80\\x80\\x80|\\xf4\\x90\\x80\\x80");
  EXPECT_EQ(printable("\xe0\xa0\x80 \xed\x9f\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"),
            "\xe0\xa0\x80 \xed\x9f\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf");
  EXPECT_EQ(printable(std::string(5000, '7'), 10), "7777777777... (5000 bytes in all)");
  EXPECT_EQ(printable(std::string(10, '7'), 10), std::string(10, '7'));
}

TEST(Text, RequireTextNamesTheLineAndTheByte) {
  EXPECT_NO_THROW(require_text("a = 1\r\nb = 2\t# note\n", "c.ini"));
  try {
    static const char text[] = "a = 1\nb = 2\n\nc = \0d";
    require_text(std::string(text, sizeof text - 1), "c.ini");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "c.ini: line 4 holds the byte 0x00, expected text");
  }
}

}  // namespace
}  // namespace dptrain
