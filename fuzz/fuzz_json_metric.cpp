// Fuzzes the single-metric JSON codec (POST /update/ and POST /value/):
// decode_metric and decode_key throw only core::InvalidInput, what they
// accept is valid, and a decoded metric survives encode → decode bit for bit.
// Also checks that append_json_string turns any valid UTF-8 into a JSON
// string that reads back to the same bytes.
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

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace core = metrics::core;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  try {
    const auto m = core::decode_metric(input);
    FUZZ_CHECK(!core::validate_name(m.id));
    if (m.type == core::MetricType::gauge) FUZZ_CHECK(std::isfinite(m.value));
    const auto back = core::decode_metric(core::encode_metric(m));
    FUZZ_CHECK(back.id == m.id && back.type == m.type);
    if (m.type == core::MetricType::counter) {
      FUZZ_CHECK(back.delta == m.delta);
    } else {
      FUZZ_CHECK(std::bit_cast<std::uint64_t>(back.value) == std::bit_cast<std::uint64_t>(m.value));
    }
    // A metric is also a key.
    const auto key = core::decode_key(core::encode_metric(m));
    FUZZ_CHECK(key.id == m.id && key.type == m.type);
  } catch (const core::InvalidInput&) {
  }

  try {
    const auto key = core::decode_key(input);
    FUZZ_CHECK(!core::validate_name(key.id));
    std::string json = "{\"id\":";
    core::append_json_string(json, key.id);
    json += ",\"type\":\"";
    json += core::to_string(key.type);
    json += "\"}";
    FUZZ_CHECK(core::decode_key(json) == key);
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
