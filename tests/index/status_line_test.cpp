#include "probity/index/status_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "probity/index/progress.h"

namespace probity::index {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatusLineTest, OnATerminalRedrawsInPlaceAndEndsWithANewline) {
  std::ostringstream out;
  StatusLine line(out, /*terminal=*/true);
  line.Show("step 1");
  line.End("done");
  EXPECT_EQ(out.str(), "\rstep 1\x1b[K\rdone\x1b[K\n");
}

TEST(StatusLineTest, InALogWritesWholeLinesAndSkipsThoseWithinTheInterval) {
  std::ostringstream out;
  StatusLine line(out, /*terminal=*/false);
  line.Show("step 1");
  for (int i = 2; i <= 1000; ++i) line.Show("step " + std::to_string(i));  // well within 30 s
  line.Show("forced", /*force=*/true);
  line.End("done");
  EXPECT_EQ(out.str(), "step 1\nforced\ndone\n");
}

TEST(StatusLineTest, IsDueFirstAndNotAgainWithinTheInterval) {
  std::ostringstream out;
  StatusLine line(out, /*terminal=*/false);
  EXPECT_TRUE(line.Due());
  line.Show("step 1");
  EXPECT_FALSE(line.Due());
  line.End("done");
  EXPECT_TRUE(line.Due());  // a new line starts after End
}

TEST(StatusLineTest, AnyStreamButTheStandardOnesIsALog) {
  std::ostringstream out;
  EXPECT_FALSE(StatusLine(out).terminal());
}

TEST(StatusLineTest, AProgressBarInALogHasNoRedrawCodes) {
  std::ostringstream out;
  {
    ProgressBar bar("reading", 1000, "vectors", out);
    for (int i = 0; i < 1000; ++i) bar.Advance(1);
  }
  const std::string text = out.str();
  EXPECT_THAT(text, Not(HasSubstr("\r")));
  EXPECT_THAT(text, Not(HasSubstr("\x1b[K")));
  // The opening line and the final one; the thousand steps in between fell within 30 s.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_THAT(text, HasSubstr("100% 1000/1000 vectors"));
}

}  // namespace
}  // namespace probity::index
