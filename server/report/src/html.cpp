#include "html.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace probity::report::internal {

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '\0':
        out += "\xEF\xBF\xBD";  // U+FFFD: a NUL would end the text in some readers
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatTime(int64_t unix_micros) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMicros(unix_micros),
                          absl::UTCTimeZone());
}

std::string BarChartSvg(const std::vector<ChartBucket>& buckets, int64_t bucket_micros,
                        std::string_view label) {
  constexpr int kWidth = 720, kHeight = 220, kLeft = 48, kRight = 12, kTop = 16, kBottom = 40;
  const int plot_width = kWidth - kLeft - kRight;
  const int plot_height = kHeight - kTop - kBottom;
  uint64_t highest = 1;
  for (const ChartBucket& bucket : buckets) {
    highest = std::max({highest, bucket.searches, bucket.refusals});
  }
  std::string svg = absl::StrCat(
      "<svg class=\"chart\" role=\"img\" aria-label=\"", Escape(label), "\" width=\"", kWidth,
      "\" height=\"", kHeight, "\" viewBox=\"0 0 ", kWidth, " ", kHeight,
      "\" xmlns=\"http://www.w3.org/2000/svg\">\n<title>", Escape(label), "</title>\n");
  // Axes, and the largest count on the y axis.
  absl::StrAppend(&svg, "<line x1=\"", kLeft, "\" y1=\"", kTop, "\" x2=\"", kLeft, "\" y2=\"",
                  kTop + plot_height, "\" stroke=\"#444\"/>\n<line x1=\"", kLeft, "\" y1=\"",
                  kTop + plot_height, "\" x2=\"", kLeft + plot_width, "\" y2=\"",
                  kTop + plot_height, "\" stroke=\"#444\"/>\n");
  absl::StrAppend(&svg, "<text x=\"", kLeft - 6, "\" y=\"", kTop + 10,
                  "\" text-anchor=\"end\" font-size=\"11\">", highest, "</text>\n<text x=\"",
                  kLeft - 6, "\" y=\"", kTop + plot_height,
                  "\" text-anchor=\"end\" font-size=\"11\">0</text>\n");
  if (!buckets.empty()) {
    const double slot = static_cast<double>(plot_width) / static_cast<double>(buckets.size());
    const double bar = std::clamp(slot * 0.4, 1.0, 24.0);  // thin bars read as counts
    for (size_t i = 0; i < buckets.size(); ++i) {
      const ChartBucket& bucket = buckets[i];
      const double x = kLeft + slot * static_cast<double>(i) + slot * 0.1;
      const std::string when = FormatTime(bucket.start_unix_micros);
      for (int series = 0; series < 2; ++series) {
        const uint64_t count = series == 0 ? bucket.searches : bucket.refusals;
        if (count == 0) continue;
        const double height = static_cast<double>(plot_height) * static_cast<double>(count) /
                              static_cast<double>(highest);
        absl::StrAppend(
            &svg, absl::StrFormat("<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                                  "height=\"%.1f\" fill=\"%s\"><title>%s: %d %s</title></rect>\n",
                                  series == 0 ? "bar-searches" : "bar-refusals", x + series * bar,
                                  kTop + plot_height - height, bar, height,
                                  series == 0 ? "#2b6cb0" : "#c53030", when, count,
                                  series == 0 ? "searches" : "refusals"));
      }
    }
    absl::StrAppend(&svg, "<text x=\"", kLeft, "\" y=\"", kHeight - 22, "\" font-size=\"11\">",
                    FormatTime(buckets.front().start_unix_micros), "</text>\n<text x=\"",
                    kLeft + plot_width, "\" y=\"", kHeight - 22,
                    "\" text-anchor=\"end\" font-size=\"11\">",
                    FormatTime(buckets.back().start_unix_micros + bucket_micros), "</text>\n");
  }
  absl::StrAppend(&svg, "<rect x=\"", kLeft, "\" y=\"", kHeight - 14,
                  "\" width=\"10\" height=\"10\" fill=\"#2b6cb0\"/><text x=\"", kLeft + 14,
                  "\" y=\"", kHeight - 5, "\" font-size=\"11\">searches</text><rect x=\"",
                  kLeft + 90, "\" y=\"", kHeight - 14,
                  "\" width=\"10\" height=\"10\" fill=\"#c53030\"/><text x=\"", kLeft + 104,
                  "\" y=\"", kHeight - 5, "\" font-size=\"11\">refusals</text>\n");
  absl::StrAppend(&svg, "<text x=\"", kLeft + plot_width, "\" y=\"", kHeight - 5,
                  "\" text-anchor=\"end\" font-size=\"11\">one bar per ",
                  absl::FormatDuration(absl::Microseconds(bucket_micros)), "</text>\n</svg>\n");
  return svg;
}

}  // namespace probity::report::internal
