// Fuzzes the single-metric JSON codec (POST /update/ and POST /value/):
// decode_update and decode_value_query throw only core::InvalidInput, what
// they accept is valid (labels included), and a decoded update survives
// encode → decode bit for bit. Also checks that append_json_string turns any
// valid UTF-8 into a JSON string that reads back to the same bytes.
#include <simdjson.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/metric.hpp"

namespace {

void check_labels(const metrics::core::Labels& labels) {
  namespace core = metrics::core;
  FUZZ_CHECK(labels.size() <= core::kMaxLabels);
  for (core::LabelView l : labels) {
    FUZZ_CHECK(!core::validate_label_name(l.name));
    FUZZ_CHECK(!core::validate_label_value(l.name, l.value));
    FUZZ_CHECK(!l.value.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace core = metrics::core;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  try {
    const auto u = core::decode_update(input);
    FUZZ_CHECK(!core::validate_name(u.id));
    if (u.type == core::MetricType::gauge) FUZZ_CHECK(std::isfinite(u.value));
    check_labels(u.labels);
    const auto back = core::decode_update(core::encode_update(u));
    FUZZ_CHECK(back.id == u.id && back.type == u.type && back.labels == u.labels);
    if (u.type == core::MetricType::counter) {
      FUZZ_CHECK(back.delta == u.delta);
    } else {
      FUZZ_CHECK(std::bit_cast<std::uint64_t>(back.value) == std::bit_cast<std::uint64_t>(u.value));
    }
    // An update is also a query: of its series when labelled, of the
    // classic value when not (no "labels" is written then).
    const auto query = core::decode_value_query(core::encode_update(u));
    FUZZ_CHECK(query.key.id == u.id && query.key.type == u.type);
    FUZZ_CHECK(query.labels.has_value() == !u.labels.empty());
    if (query.labels) FUZZ_CHECK(*query.labels == u.labels);
    // The answer form of the same series reads back too.
    auto point = u.type == core::MetricType::counter ? core::Point::counter(u.id, u.delta, u.labels)
                                                     : core::Point::gauge(u.id, u.value, u.labels);
    const auto from_point = core::decode_update(core::encode_point(point));
    FUZZ_CHECK(from_point.labels == u.labels);
  } catch (const core::InvalidInput&) {
  }

  try {
    const auto query = core::decode_value_query(input);
    FUZZ_CHECK(!core::validate_name(query.key.id));
    if (query.labels) check_labels(*query.labels);
    std::string json = "{\"id\":";
    core::append_json_string(json, query.key.id);
    json += ",\"type\":\"";
    json += core::to_string(query.key.type);
    json += "\"";
    if (query.labels) {
      json += ",\"labels\":";
      core::append_labels_json(json, *query.labels);
    }
    json += "}";
    const auto again = core::decode_value_query(json);
    FUZZ_CHECK(again.key == query.key);
    FUZZ_CHECK(again.labels == query.labels);
  } catch (const core::InvalidInput&) {
  }

  // Error bodies carry client text; they must stay valid JSON.
  const auto err = core::encode_error(input);
  FUZZ_CHECK(err.starts_with("{\"error\":"));

  if (simdjson::validate_utf8(input.data(), input.size())) {
    std::string literal;
    core::append_json_string(literal, input);
    simdjson::dom::parser parser;
    const simdjson::padded_string padded(literal);
    std::string_view parsed;
    FUZZ_CHECK(parser.parse(padded).get_string().get(parsed) == simdjson::SUCCESS);
    FUZZ_CHECK(parsed == input);

    simdjson::dom::parser err_parser;
    const simdjson::padded_string err_padded(err);
    std::string_view message;
    FUZZ_CHECK(err_parser.parse(err_padded)["error"].get_string().get(message) ==
               simdjson::SUCCESS);
  }
  return 0;
}
