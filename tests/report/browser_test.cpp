// The report as a person sees it: rendered by headless Chromium from the known test ledger.
// A wrapper page loads the report in an iframe and copies out its rendered text
// (innerText: what is displayed) and what the browser built (SVG bars, script elements), which
// `--dump-dom` then prints. Also takes a screenshot (written to the build directory; the one
// in docs/ was made this way). Skips when Chromium is not installed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "probity/common/file_read.h"
#include "probity/report/report.h"
#include "report_test_ledger.h"

namespace probity::report {
namespace {

using ledger::testing::kOrigin;
using ledger::testing::ScratchDir;

std::string FindChromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    if (std::system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0) {
      return name;
    }
  }
  return "";
}

// Runs headless Chromium on `url` with `arguments`; returns its standard output.
std::string RunChromium(const std::string& chromium, const std::string& arguments,
                        const std::string& url, const std::filesystem::path& scratch) {
  const auto out = scratch / "chromium.out";
  // --no-sandbox: CI runs tests as root, where Chromium's sandbox refuses to start.
  const std::string command = chromium +
                              " --headless --no-sandbox --disable-gpu --no-first-run "
                              "--user-data-dir=" +
                              (scratch / "profile").string() + " " + arguments + " '" + url +
                              "' > " + out.string() + " 2>/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return common::ReadFileToString(out).value_or("");
}

constexpr char kWrapper[] = R"(<!DOCTYPE html>
<html><body>
<iframe id="report" src="report.html" width="1280" height="900"></iframe>
<pre id="seen"></pre>
<script>
document.getElementById('report').addEventListener('load', () => {
  const page = document.getElementById('report').contentDocument;
  document.getElementById('seen').textContent =
      'BARS=' + page.querySelectorAll('svg.chart rect.bar-searches').length +
      '\nREFUSAL_BARS=' + page.querySelectorAll('svg.chart rect.bar-refusals').length +
      '\nSCRIPTS=' + page.querySelectorAll('script').length +
      '\nTEXT=' + page.body.innerText;
});
</script>
</body></html>
)";

TEST(ReportBrowserTest, ChromiumShowsCountsCasesRefusalsAndAChart) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "Chromium is not installed (Debian package chromium, in "
                    "deploy/install-deps.sh)";
  }
  ScratchDir scratch;
  const ledger::Options options = ledger::testing::MakeOptions(scratch);
  testing::WriteKnownLedger(options);
  auto verifier =
      ledger::NoteVerifier::FromPem(ledger::testing::ReadFile(options.signing_key), kOrigin);
  ASSERT_TRUE(verifier.ok());
  ReportOptions report;
  report.ledger_dir = options.dir;
  report.origin = kOrigin;
  report.generated_at_unix_micros = testing::kStart * 1000000;
  auto html = RenderReport(report, *verifier);
  ASSERT_TRUE(html.ok()) << html.status();
  const auto page = scratch.path() / "report.html";
  std::ofstream(page) << *html;
  std::ofstream(scratch.path() / "wrapper.html") << kWrapper;

  const std::string dom =
      RunChromium(chromium, "--allow-file-access-from-files --virtual-time-budget=10000 --dump-dom",
                  "file://" + (scratch.path() / "wrapper.html").string(), scratch.path());
  const size_t seen = dom.find("BARS=");
  ASSERT_NE(seen, std::string::npos) << dom.substr(0, 2000);
  // innerText as dumped: HTML-escaped again by the DOM serializer.
  const std::string text = dom.substr(seen);
  EXPECT_EQ(text.find("SCRIPTS=0"), text.find("SCRIPTS=")) << "the report ran no script";
  EXPECT_EQ(text.find("BARS=0\n"), std::string::npos) << "the chart has search bars";
  EXPECT_EQ(text.find("REFUSAL_BARS=0\n"), std::string::npos) << "the chart has refusal bars";
  for (const char* visible : {
           "Probity oversight report",
           "Verified before reporting: all 8 entries re-hashed",
           "Case CASE-1",
           "Case CASE-2",
           "Case (no verified warrant)",
           "2 searches, 2 refusals, 8 candidates returned, 1 searches with incomplete coverage, "
           "1 reviews (1 candidates kept as leads, 1 rejected).",
           "budget_exhausted\t1",
           "k_over_max\t1",
           "invalid_token\t1",
           "robbery at the harbour",
           "court order 17/2026",
           "matches the scar on the left cheek",
           // The hostile justification is shown as text, never run.
           "&lt;script&gt;alert('x')&lt;/script&gt; &amp; \"more\"",
           "Inclusion proofs (tree size 8)",
       }) {
    EXPECT_NE(text.find(visible), std::string::npos) << "not shown: " << visible << "\n" << text;
  }

  const auto screenshot = std::filesystem::path(PROBITY_TEST_BINARY_DIR) / "report-screenshot.png";
  std::filesystem::remove(screenshot);
  RunChromium(chromium,
              "--hide-scrollbars --window-size=1280,1500 --screenshot=" + screenshot.string(),
              "file://" + page.string(), scratch.path());
  ASSERT_TRUE(std::filesystem::exists(screenshot));
  const std::string png = common::ReadFileToString(screenshot).value_or("");
  EXPECT_TRUE(png.starts_with("\x89PNG")) << "not a PNG";
  EXPECT_GT(png.size(), 20000u) << "an empty page is smaller";
}

}  // namespace
}  // namespace probity::report
