#pragma once

// HTML building blocks for the report: escaping (every ledger string is attacker-influenced
// text), time formatting, and a bar chart as inline SVG.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace probity::report::internal {

// Text safe in element content and in quoted attribute values: & < > " ' become entities.
std::string Escape(std::string_view text);

// "2026-11-25 10:00:00 UTC".
std::string FormatTime(int64_t unix_micros);

struct ChartBucket {
  int64_t start_unix_micros = 0;
  uint64_t searches = 0;
  uint64_t refusals = 0;
};

// Searches and refusals per time bucket as side-by-side bars, with axis labels and a
// <title> on each bar; `label` names the chart for screen readers.
std::string BarChartSvg(const std::vector<ChartBucket>& buckets, int64_t bucket_micros,
                        std::string_view label);

}  // namespace probity::report::internal
