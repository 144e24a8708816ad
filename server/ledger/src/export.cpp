#include "probity/ledger/export.h"

#include <google/protobuf/util/json_util.h>

#include <string_view>

#include "absl/strings/escaping.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/reader.h"
#include "probity/v1/ledger_entry.pb.h"

namespace probity::ledger {

absl::Status ExportEntries(const std::filesystem::path& dir, const ExportFilter& filter,
                           ExportDetail detail, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  json_options.always_print_primitive_fields = true;  // id 0, score 0, shard 0 are data
  uint64_t printed = 0;
  return ReadEntries(
      dir, filter.from, [&](uint64_t index, std::string_view bytes) -> absl::StatusOr<bool> {
        v1::LedgerEntry entry;
        if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          return absl::DataLossError("entry " + std::to_string(index) +
                                     " is not a LedgerEntry message");
        }
        if (!filter.warrant_id.empty() && entry.warrant_id() != filter.warrant_id) return true;
        if (!filter.case_number.empty() && entry.case_number() != filter.case_number) return true;
        if (filter.since_unix_micros && entry.time_unix_micros() < *filter.since_unix_micros) {
          return true;
        }
        if (filter.until_unix_micros && entry.time_unix_micros() >= *filter.until_unix_micros) {
          return true;
        }
        std::string json;
        if (!google::protobuf::util::MessageToJsonString(entry, &json, json_options).ok()) {
          return absl::InternalError("cannot render entry " + std::to_string(index));
        }
        out << "{\"index\":" << index;
        if (detail == ExportDetail::kStoredBytes) {
          out << ",\"leaf_hash\":\"" << ToHex(HashLeaf(bytes)) << "\",\"bytes\":\""
              << absl::Base64Escape(absl::string_view(bytes.data(), bytes.size())) << "\"";
        }
        out << ",\"entry\":" << json << "}\n";
        ++printed;
        return filter.limit == 0 || printed < filter.limit;
      });
}

}  // namespace probity::ledger
