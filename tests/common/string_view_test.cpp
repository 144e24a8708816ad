#include "probity/common/string_view.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace probity::common {
namespace {

TEST(StringViewBridgeTest, AbslAndStdViewsConvertWithoutCopying) {
  const std::string text = "ledger";
  const absl::string_view absl_view = AsAbsl(std::string_view(text));
  EXPECT_EQ(absl_view.data(), text.data());
  EXPECT_EQ(absl::StrCat(absl_view, "!"), "ledger!");
  const std::string_view back = AsStd(absl_view);
  EXPECT_EQ(back.data(), text.data());
  EXPECT_EQ(back.size(), text.size());
}

TEST(StringViewBridgeTest, SplitKeepsEmptyParts) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string_view>{""}));
  EXPECT_EQ(Split("a,", ','), (std::vector<std::string_view>{"a", ""}));
}

TEST(StringViewBridgeTest, CatJoinsEitherViewTypeCharactersAndIntegers) {
  const std::string_view std_view = "std";
  const absl::string_view absl_view = "absl";
  EXPECT_EQ(Cat(std_view, '/', absl_view, ":", std::string("s"), -42, uint64_t{7}),
            "std/absl:s-427");
}

}  // namespace
}  // namespace probity::common
