#include "probity/report/report.h"

#include <functional>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "html.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/reader.h"
#include "probity/ledger/verify.h"
#include "report_data.h"

namespace probity::report {
namespace {

using internal::CaseData;
using internal::EntryRow;
using internal::Escape;
using internal::FormatTime;

constexpr size_t kShownTextBytes = 300;  // of a justification, reason or detail in a cell

std::string Base64(const ledger::Hash& hash) {
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
}

// A cell's text: escaped, and cut (with its full length said) past kShownTextBytes.
std::string Cell(std::string_view text) {
  if (text.size() <= kShownTextBytes) return Escape(text);
  size_t cut = kShownTextBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(Escape(text.substr(0, cut)), " <span class=\"note\">[", text.size(),
                      " bytes; shown in full by <code>probity ledger show</code>]</span>");
}

std::string IndexCell(uint64_t index) {
  return absl::StrCat("<td class=\"index\"><a href=\"#proof-", index, "\">#", index, "</a></td>");
}

std::string OutcomeName(v1::Outcome outcome) {
  switch (outcome) {
    case v1::OUTCOME_ANSWERED:
      return "answered";
    case v1::OUTCOME_ANSWERED_PARTIAL:
      return "answered (partial)";
    case v1::OUTCOME_FAILED:
      return "failed";
    case v1::OUTCOME_REFUSED:
      return "refused";
    case v1::OUTCOME_APPLIED:
      return "applied";
    case v1::OUTCOME_REQUESTED:
      return "requested";
    default:
      return "unspecified";
  }
}

std::string ReviewOutcomeName(v1::ReviewOutcome outcome) {
  switch (outcome) {
    case v1::REVIEW_OUTCOME_KEPT:
      return "kept as a lead";
    case v1::REVIEW_OUTCOME_REJECTED:
      return "rejected";
    default:
      return "unspecified";
  }
}

std::string Investigator(const v1::LedgerEntry& entry) {
  const auto& who = entry.investigator();
  if (who.tls_identity().empty() || who.tls_identity() == who.sub()) return Cell(who.sub());
  if (who.sub().empty()) return Cell(who.tls_identity());
  return absl::StrCat(Cell(who.sub()), " (certificate ", Cell(who.tls_identity()), ")");
}

std::string Coverage(const v1::LedgerEntry& entry) {
  return absl::StrCat(entry.coverage().shards_answered(), "/", entry.coverage().shards_total());
}

// The rows of one table: the first rows, a line saying how many are left out, the last rows.
template <typename Render>
std::string Rows(const internal::BoundedRows<EntryRow>& rows, int columns, Render render) {
  std::string html;
  for (const EntryRow& row : rows.first()) html += render(row);
  if (rows.left_out() > 0) {
    absl::StrAppend(&html, "<tr class=\"left-out\"><td colspan=\"", columns, "\">", rows.left_out(),
                    " rows between these are not shown (narrow the report with filters to see "
                    "them)</td></tr>\n");
  }
  for (const EntryRow& row : rows.last()) html += render(row);
  return html;
}

std::string Table(const std::string& caption, const std::string& header, int columns,
                  const internal::BoundedRows<EntryRow>& rows,
                  const std::function<std::string(const EntryRow&)>& render) {
  if (rows.total() == 0) {
    return absl::StrCat("<p class=\"none\">", caption, ": none.</p>\n");
  }
  return absl::StrCat("<table><caption>", caption, " (", rows.total(), ")</caption>\n<tr>", header,
                      "</tr>\n", Rows(rows, columns, render), "</table>\n");
}

std::string SearchRow(const EntryRow& row) {
  const v1::LedgerEntry& e = row.entry;
  std::string reviews;
  for (uint64_t index : row.review_entries) {
    absl::StrAppend(&reviews, reviews.empty() ? "" : ", ", "<a href=\"#entry-", index, "\">#",
                    index, "</a>");
  }
  return absl::StrCat(
      "<tr id=\"entry-", row.index, "\">", IndexCell(row.index), "<td>",
      FormatTime(e.time_unix_micros()), "</td><td>", Cell(e.warrant_id()), "</td><td>",
      Investigator(e), "</td><td>", Cell(absl::StrJoin(e.collections(), ", ")), "</td><td>",
      e.parameters().k(), "</td><td>", e.query_count(), "</td><td class=\"candidates\">",
      row.candidates, "</td><td>", OutcomeName(e.outcome()), "</td><td>", Coverage(e), "</td><td>",
      Cell(e.justification()), "</td><td>", reviews.empty() ? "none" : reviews, "</td></tr>\n");
}

constexpr char kSearchHeader[] =
    "<th>entry</th><th>time</th><th>warrant</th><th>investigator</th><th>collection</th>"
    "<th>k</th><th>queries</th><th>candidates</th><th>outcome</th><th>shards</th>"
    "<th>justification</th><th>reviews</th>";

std::string RefusalRow(const EntryRow& row) {
  const v1::LedgerEntry& e = row.entry;
  return absl::StrCat("<tr id=\"entry-", row.index, "\">", IndexCell(row.index), "<td>",
                      FormatTime(e.time_unix_micros()), "</td><td>", Cell(e.warrant_id()),
                      "</td><td>", Investigator(e), "</td><td class=\"code\">",
                      Cell(e.refusal().code()), "</td><td>", Cell(e.refusal().message()),
                      "</td><td>", Cell(e.justification()), "</td></tr>\n");
}

std::string ReviewRow(const EntryRow& row, size_t max_candidates) {
  const v1::LedgerEntry& e = row.entry;
  std::string decisions;
  int shown = 0;
  for (const auto& review : e.review().candidates()) {
    if (static_cast<size_t>(shown++) == max_candidates) {
      absl::StrAppend(&decisions, "<li>", e.review().candidates_size() - max_candidates,
                      " more</li>");
      break;
    }
    absl::StrAppend(&decisions, "<li>query ", review.query(), ", id ", review.id(), ": <b>",
                    ReviewOutcomeName(review.outcome()), "</b> &mdash; ", Cell(review.reason()),
                    "</li>");
  }
  const uint64_t search = e.review().search_entry_index();
  return absl::StrCat("<tr id=\"entry-", row.index, "\">", IndexCell(row.index), "<td>",
                      FormatTime(e.time_unix_micros()), "</td><td>", Investigator(e),
                      "</td><td><a href=\"#entry-", search, "\">#", search, "</a></td><td><ul>",
                      decisions, "</ul></td></tr>\n");
}

std::string AdminRow(const EntryRow& row) {
  const v1::LedgerEntry& e = row.entry;
  return absl::StrCat("<tr id=\"entry-", row.index, "\">", IndexCell(row.index), "<td>",
                      FormatTime(e.time_unix_micros()), "</td><td class=\"action\">",
                      Cell(e.admin().action()), "</td><td>", Cell(e.admin().operator_()),
                      "</td><td>", OutcomeName(e.outcome()), "</td><td>", Cell(e.admin().reason()),
                      "</td><td>", e.admin().ids_size(), "</td><td>", Cell(e.admin().detail()),
                      "</td></tr>\n");
}

std::string WarrantsTable(const CaseData& data) {
  std::string html =
      "<table><caption>Warrants used</caption>\n<tr><th>issuer</th><th>warrant</th>"
      "<th>purpose</th><th>investigator</th><th>valid from</th><th>valid until</th>"
      "<th>budget (queries)</th><th>used</th><th>left</th><th>max k</th><th>searches</th>"
      "<th>refusals</th><th>reviews</th></tr>\n";
  for (const auto& [key, use] : data.warrants) {
    std::string from = "not recorded", until = "not recorded", budget = "not recorded",
                left = "not recorded", max_k = "not recorded";
    if (use.has_terms) {
      from = FormatTime(use.terms.not_before() * 1000000);
      until = FormatTime(use.terms.expires() * 1000000);
      budget = absl::StrCat(use.terms.max_queries());
      left = absl::StrCat(
          std::max<int64_t>(0, use.terms.max_queries() - static_cast<int64_t>(use.budget_used)));
      max_k = absl::StrCat(use.terms.max_k());
    }
    std::vector<std::string> investigators;
    for (const auto& who : use.investigators) investigators.push_back(Cell(who));
    absl::StrAppend(
        &html, "<tr><td>", Cell(use.issuer), "</td><td>", Cell(use.warrant_id), "</td><td>",
        Cell(use.purpose), "</td><td>", absl::StrJoin(investigators, ", "), "</td><td>", from,
        "</td><td>", until, "</td><td>", budget, "</td><td class=\"budget-used\">", use.budget_used,
        "</td><td class=\"budget-left\">", left, "</td><td>", max_k, "</td><td>", use.searches,
        "</td><td>", use.refusals, "</td><td>", use.reviews, "</td></tr>\n");
  }
  if (data.warrants_not_listed > 0) {
    absl::StrAppend(&html, "<tr class=\"left-out\"><td colspan=\"13\">", data.warrants_not_listed,
                    " entries under further warrants not listed</td></tr>\n");
  }
  return html + "</table>\n";
}

std::string Chart(const CaseData& data, const std::string& case_label) {
  if (data.per_hour.empty()) return "<p class=\"none\">No searches or refusals to chart.</p>\n";
  constexpr int64_t kHour = int64_t{3600} * 1000000;
  const int64_t first = data.per_hour.begin()->first;
  const int64_t last = data.per_hour.rbegin()->first;
  // At most 48 bars: an hour each, or as many hours per bar as the span needs.
  const int64_t hours_per_bucket = std::max<int64_t>(1, (last - first) / 48 + 1);
  std::vector<internal::ChartBucket> buckets(
      static_cast<size_t>((last - first) / hours_per_bucket + 1));
  for (size_t i = 0; i < buckets.size(); ++i) {
    buckets[i].start_unix_micros = (first + static_cast<int64_t>(i) * hours_per_bucket) * kHour;
  }
  for (const auto& [hour, counts] : data.per_hour) {
    auto& bucket = buckets[static_cast<size_t>((hour - first) / hours_per_bucket)];
    bucket.searches += counts.first;
    bucket.refusals += counts.second;
  }
  return internal::BarChartSvg(buckets, hours_per_bucket * kHour,
                               absl::StrCat("Searches and refusals over time, case ", case_label));
}

std::string RefusalCodes(const CaseData& data) {
  if (data.refusals_by_code.empty()) return "";
  std::string html =
      "<table class=\"codes\"><caption>Refusals by reason</caption>\n<tr><th>reason</th>"
      "<th>refusals</th></tr>\n";
  for (const auto& [code, count] : data.refusals_by_code) {
    absl::StrAppend(&html, "<tr><td class=\"code\">", Cell(code), "</td><td>", count,
                    "</td></tr>\n");
  }
  return html + "</table>\n";
}

std::string CaseSection(const std::string& name, const CaseData& data, const ReportLimits& limits) {
  const std::string label = name.empty() ? "(no verified warrant)" : Cell(name);
  std::string html = absl::StrCat(
      "<section class=\"case\">\n<h2>Case <span class=\"case-number\">", label, "</span></h2>\n",
      "<p class=\"summary\"><span class=\"searches-count\">", data.searches.total(),
      "</span> searches, <span class=\"refusals-count\">", data.refusals.total(),
      "</span> refusals, <span class=\"candidates-count\">", data.candidates,
      "</span> candidates returned, <span class=\"incomplete-count\">", data.incomplete.total(),
      "</span> searches with incomplete coverage, <span class=\"reviews-count\">",
      data.reviews.total(), "</span> reviews (", data.kept, " candidates kept as leads, ",
      data.rejected, " rejected).</p>\n");
  if (!data.warrants.empty()) html += WarrantsTable(data);
  html += Chart(data, label);
  html += RefusalCodes(data);
  html += Table("Searches", kSearchHeader, 12, data.searches, SearchRow);
  html += Table("Searches with incomplete coverage", kSearchHeader, 12, data.incomplete, SearchRow);
  html += Table("Refusals",
                "<th>entry</th><th>time</th><th>warrant</th><th>investigator</th><th>reason</th>"
                "<th>message</th><th>justification</th>",
                7, data.refusals, RefusalRow);
  html += Table(
      "Human reviews",
      "<th>entry</th><th>time</th><th>reviewer</th><th>search reviewed</th><th>decisions</th>", 5,
      data.reviews,
      [&](const EntryRow& row) { return ReviewRow(row, limits.max_candidate_reviews_per_row); });
  return html + "</section>\n";
}

constexpr char kStyle[] = R"(<style>
body{font-family:sans-serif;margin:1.5em;color:#1a202c;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:2px solid #2b6cb0;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em;width:100%}
caption{text-align:left;font-weight:bold;padding:.3em 0}
th,td{border:1px solid #cbd5e0;padding:.25em .4em;vertical-align:top;text-align:left}
th{background:#edf2f7}td.index{white-space:nowrap}
tr.left-out td{font-style:italic;background:#fffaf0}
.note{color:#718096}.none{color:#4a5568}.ok{color:#276749;font-weight:bold}
code,pre{font-size:.85em;word-break:break-all;white-space:pre-wrap}
ul{margin:0;padding-left:1.2em}
</style>
)";

std::string HowToCheck(const ledger::Checkpoint& checkpoint, const std::string& verifier_key) {
  return absl::StrCat(
      "<h3>How to check this report</h3>\n<ol>\n"
      "<li>The signed checkpoint above is a C2SP <code>tlog-checkpoint</code> signed as a C2SP "
      "<code>signed-note</code> with Ed25519. Check its signature with the log's published "
      "verifier key <code>",
      Escape(verifier_key),
      "</code>, e.g. Go's <code>golang.org/x/mod/sumdb/note</code> "
      "(<code>note.Open(text, note.VerifierList(verifier))</code>). Its third line is the "
      "base64 Merkle root of the first ",
      checkpoint.size,
      " entries.</li>\n"
      "<li>Each proof below is an RFC 6962 / RFC 9162 inclusion proof: the entry's index, the "
      "tree size ",
      checkpoint.size,
      ", its leaf hash and its audit path (hex, in order from the leaf up). Any RFC 6962 "
      "verifier checks it against the checkpoint's root, e.g. "
      "<code>proof.VerifyInclusion(rfc6962.DefaultHasher, index, ",
      checkpoint.size,
      ", leafHash, auditPath, root)</code> of <code>github.com/transparency-dev/merkle</code>, "
      "or the algorithm of RFC 9162 section 2.1.3.2.</li>\n"
      "<li>The leaf hash is SHA-256(0x00 || the entry's stored bytes). To see that a row shows "
      "what the ledger holds, export the entry (<code>probity ledger export --dir DIR --from "
      "INDEX --limit 1</code> prints its bytes in base64 and its leaf hash), hash it, and compare "
      "its decoded fields with the row.</li>\n"
      "<li>To check that a later ledger still contains this one, ask for a consistency proof "
      "from size ",
      checkpoint.size, " (<code>probity ledger prove consistency --old ", checkpoint.size,
      "</code>).</li>\n</ol>\n");
}

}  // namespace

bool ReportFilter::Matches(const v1::LedgerEntry& entry) const {
  if (since_unix_micros && entry.time_unix_micros() < *since_unix_micros) return false;
  if (until_unix_micros && entry.time_unix_micros() >= *until_unix_micros) return false;
  if (entry.kind() == v1::ENTRY_KIND_ADMIN) return true;
  if (!case_number.empty() && entry.case_number() != case_number) return false;
  if (!warrant_id.empty() && entry.warrant_id() != warrant_id) return false;
  if (!investigator.empty() && entry.investigator().sub() != investigator &&
      entry.investigator().tls_identity() != investigator) {
    return false;
  }
  return true;
}

std::string ReportFilter::Describe() const {
  std::vector<std::string> parts;
  if (!case_number.empty()) parts.push_back("case " + case_number);
  if (!warrant_id.empty()) parts.push_back("warrant " + warrant_id);
  if (!investigator.empty()) parts.push_back("investigator " + investigator);
  if (since_unix_micros) parts.push_back("since " + FormatTime(*since_unix_micros));
  if (until_unix_micros) parts.push_back("until " + FormatTime(*until_unix_micros));
  return parts.empty() ? "none (the whole ledger)" : absl::StrJoin(parts, ", ");
}

absl::StatusOr<std::string> RenderReport(const ReportOptions& options,
                                         const ledger::NoteVerifier& verifier) {
  // 1. The whole ledger, signatures included: no report on a log that does not verify.
  auto verified = ledger::VerifyLedger({options.ledger_dir, {}, verifier, options.origin});
  if (!verified.ok()) return verified.status();
  if (!verified->ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the ledger does not verify, so there is no report: ", verified->problems.front(),
        verified->first_bad_entry
            ? absl::StrCat(" (first bad entry ", *verified->first_bad_entry, ")")
            : std::string()));
  }
  const uint64_t tree_size = verified->entries;
  ledger::Checkpoint checkpoint{verifier.name(), 0, ledger::EmptyTreeRoot(), {}};
  if (tree_size > 0) {
    auto opened =
        ledger::OpenSignedCheckpoint(verified->last_signed_checkpoint, verifier, options.origin);
    if (!opened.ok()) return opened.status();
    if (opened->size != tree_size || opened->root != verified->root) {
      return absl::DataLossError("the last commit marker does not cover the verified entries");
    }
    checkpoint = *opened;
  }

  // 2. What matches the filter, bounded; then the budgets of the warrants shown.
  internal::ReportData data(options.limits);
  data.tree_size = tree_size;
  auto read = [&](const std::function<void(uint64_t, std::string_view, v1::LedgerEntry)>& use) {
    return ledger::ReadEntries(
        options.ledger_dir, 0, [&](uint64_t index, std::string_view bytes) -> absl::StatusOr<bool> {
          if (index >= tree_size) return false;
          v1::LedgerEntry entry;
          if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
            return absl::DataLossError(
                absl::StrCat("entry ", index, " is not a LedgerEntry message"));
          }
          use(index, bytes, std::move(entry));
          return true;
        });
  };
  absl::Status status = read([&](uint64_t index, std::string_view bytes, v1::LedgerEntry entry) {
    if (options.filter.Matches(entry)) data.Add(index, bytes, std::move(entry));
  });
  if (status.ok()) {
    status =
        read([&](uint64_t, std::string_view, v1::LedgerEntry entry) { data.ChargeBudget(entry); });
  }
  if (!status.ok()) return status;

  // 3. An inclusion proof for every entry shown, checked here against the signed root.
  std::map<uint64_t, ledger::Hash> leaves;
  auto collect = [&](EntryRow& row) { leaves.emplace(row.index, row.leaf); };
  data.admin.ForEach(collect);
  for (auto& [name, case_data] : data.cases) {
    case_data.searches.ForEach(collect);
    case_data.refusals.ForEach(collect);
    case_data.incomplete.ForEach(collect);
    case_data.reviews.ForEach(collect);
  }
  std::string proofs;
  if (!leaves.empty()) {
    auto reader = ledger::LedgerReader::Open(options.ledger_dir);
    if (!reader.ok()) return reader.status();
    for (const auto& [index, leaf] : leaves) {
      auto path = (*reader)->InclusionProof(index, tree_size);
      if (!path.ok()) return path.status();
      if (auto check = ledger::VerifyInclusion(index, tree_size, leaf, *path, checkpoint.root);
          !check.ok()) {
        return absl::DataLossError(absl::StrCat("entry ", index,
                                                ": its inclusion proof does not verify against "
                                                "the signed root: ",
                                                check.message()));
      }
      std::vector<std::string> hex;
      for (const ledger::Hash& hash : *path) hex.push_back(ledger::ToHex(hash));
      absl::StrAppend(&proofs, "<tr class=\"proof\" id=\"proof-", index, "\"><td>", index,
                      "</td><td><code class=\"leaf\">", ledger::ToHex(leaf),
                      "</code></td><td><code class=\"path\">", absl::StrJoin(hex, " "),
                      "</code></td></tr>\n");
    }
  }

  // 4. The page.
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; img-src data:\">\n<title>Probity oversight report</title>\n",
      kStyle, "</head>\n<body>\n<h1>Probity oversight report</h1>\n<p>Ledger <code>",
      Escape(checkpoint.origin), "</code>, generated ",
      FormatTime(options.generated_at_unix_micros ? options.generated_at_unix_micros
                                                  : absl::ToUnixMicros(absl::Now())),
      ". Filters: <span class=\"filters\">", Escape(options.filter.Describe()), "</span>.</p>\n",
      "<p class=\"ok\" id=\"verified\">Verified before reporting: all ", tree_size,
      " entries re-hashed, the stored tree and ", verified->commit_markers,
      " signed commit markers checked with key <code>", Escape(verifier.VerifierKey()),
      "</code>.</p>\n");
  for (const auto& warning : verified->warnings) {
    absl::StrAppend(&html, "<p class=\"note\">Warning from verification: ", Escape(warning),
                    "</p>\n");
  }
  absl::StrAppend(&html, "<p>", data.entries_matched, " entries match the filters; ",
                  data.cases.size(), " cases shown");
  if (data.cases_not_shown_entries > 0) {
    absl::StrAppend(&html, "; ", data.cases_not_shown_entries,
                    " entries of further cases are not shown (at most ", options.limits.max_cases,
                    " cases per report: filter by case)");
  }
  absl::StrAppend(
      &html, ". Each table shows its first and last ", options.limits.rows_per_table,
      " rows. Every row names its ledger entry; its inclusion proof is at the end.</p>\n");
  // Cases in order of their numbers; refusals before any warrant verified come last.
  for (const auto& [name, case_data] : data.cases) {
    if (!name.empty()) html += CaseSection(name, case_data, options.limits);
  }
  if (auto unverified = data.cases.find(""); unverified != data.cases.end()) {
    html += CaseSection("", unverified->second, options.limits);
  }
  absl::StrAppend(&html, "<section class=\"admin\">\n<h2>Admin actions</h2>\n<p>",
                  "<span class=\"erasures-count\">", data.erasures, "</span> erasures applied (",
                  data.erased_ids,
                  " ids). Admin actions change what every case searches, so they are shown "
                  "whatever the case, warrant or investigator filter.</p>\n");
  html += Table("Admin actions",
                "<th>entry</th><th>time</th><th>action</th><th>operator</th><th>outcome</th>"
                "<th>reason</th><th>ids</th><th>detail</th>",
                8, data.admin, AdminRow);
  absl::StrAppend(&html, "</section>\n<section class=\"proofs\">\n<h2>Verification</h2>\n");
  if (tree_size == 0) {
    html += "<p>The ledger is empty: there is no checkpoint and nothing to prove.</p>\n";
  } else {
    absl::StrAppend(&html,
                    "<p>The signed checkpoint this report was verified against (tree size <span "
                    "id=\"tree-size\">",
                    tree_size, "</span>, root <code id=\"root-hex\">",
                    ledger::ToHex(checkpoint.root), "</code>, base64 <code>",
                    Base64(checkpoint.root), "</code>):</p>\n<pre id=\"checkpoint\">",
                    Escape(verified->last_signed_checkpoint), "</pre>\n",
                    HowToCheck(checkpoint, verifier.VerifierKey()));
    absl::StrAppend(&html, "<table><caption>Inclusion proofs (tree size ", tree_size,
                    ")</caption>\n<tr><th>index</th><th>leaf hash</th><th>audit path</th></tr>\n",
                    proofs, "</table>\n");
  }
  html += "</section>\n</body>\n</html>\n";
  return html;
}

}  // namespace probity::report
