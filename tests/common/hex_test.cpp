#include "probity/common/hex.h"

#include <gtest/gtest.h>

#include <array>

namespace probity::common {
namespace {

TEST(LowercaseHexTest, TwoLowercaseDigitsPerByteHighNibbleFirst) {
  EXPECT_EQ(LowercaseHex(std::string_view("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
  const std::array<uint8_t, 3> bytes{0x0f, 0xf0, 0x5a};
  EXPECT_EQ(LowercaseHex(std::span<const uint8_t>(bytes)), "0ff05a");
}

TEST(LowercaseHexTest, EmptyInputGivesEmptyText) {
  EXPECT_EQ(LowercaseHex(std::string_view()), "");
}

}  // namespace
}  // namespace probity::common
