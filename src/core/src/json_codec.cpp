// The decoding half of json_codec.hpp (simdjson); the encoding half is in
// json_encode.cpp, so that what only encodes (the agent) links no simdjson.
#include "metrics/core/json_codec.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

namespace dom = simdjson::dom;

// Documents up to this size reuse the thread's parser; larger ones get a
// parser of their own so that one huge body does not pin its buffers to the
// thread for the rest of the process's life.
constexpr std::size_t kReusableParserBytes = 1U << 20;

dom::parser make_parser(std::size_t capacity) {
  dom::parser parser;
  if (parser.allocate(capacity, kMaxJsonDepth) != simdjson::SUCCESS) throw std::bad_alloc();
  return parser;
}

dom::parser& thread_parser() {
  thread_local dom::parser parser = make_parser(64 * 1024);
  return parser;
}

[[noreturn]] void fail_parse(simdjson::error_code error) {
  switch (error) {
    case simdjson::DEPTH_ERROR:
      throw InvalidInput("JSON is nested too deeply");
    case simdjson::UTF8_ERROR:
      throw InvalidInput("JSON is not valid UTF-8");
    case simdjson::NUMBER_ERROR:
      throw InvalidInput("invalid number in JSON");
    case simdjson::MEMALLOC:
      throw std::bad_alloc();
    case simdjson::EMPTY:
      throw InvalidInput("empty JSON body");
    default:
      throw InvalidInput("malformed JSON");
  }
}

// Whether simdjson can hold the integer literal: int64 when negative,
// uint64 otherwise.
bool fits_64_bits(bool negative, std::string_view digits) noexcept {
  const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
  if (digits.size() != limit.size()) return digits.size() < limit.size();
  return digits <= limit;
}

// simdjson rejects integer literals beyond the 64-bit range, although they
// are valid JSON and a gauge may legitimately hold one (1e21 prints as a
// 22-digit integer). Returns a copy of the text in which each such literal
// gets a ".0", which makes simdjson read it as a double; nullopt when there
// is none (so the error was something else).
std::optional<std::string> widen_big_integers(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 64);
  bool changed = false;
  bool in_string = false;
  std::size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        out.append(json.substr(i, 2));
        i += 2;
        continue;
      }
      if (c == '"') in_string = false;
      out.push_back(c);
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out.push_back(c);
      ++i;
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      out.push_back(c);
      ++i;
      continue;
    }
    std::size_t end = i + (c == '-' ? 1 : 0);
    const std::size_t digits_start = end;
    while (end < json.size() && json[end] >= '0' && json[end] <= '9')
      ++end;
    const std::string_view digits = json.substr(digits_start, end - digits_start);
    const bool is_float =
        end < json.size() && (json[end] == '.' || json[end] == 'e' || json[end] == 'E');
    if (is_float) {
      // Take the whole literal so that its fraction or exponent digits are
      // not mistaken for an integer of their own.
      while (end < json.size() &&
             (json[end] == '.' || json[end] == 'e' || json[end] == 'E' || json[end] == '+' ||
              json[end] == '-' || (json[end] >= '0' && json[end] <= '9'))) {
        ++end;
      }
    }
    out.append(json.substr(i, end - i));
    if (!is_float && !fits_64_bits(c == '-', digits)) {
      out.append(".0");
      changed = true;
    }
    i = end;
  }
  if (!changed) return std::nullopt;
  return out;
}

// Parses with the right parser and hands the root element to `use`, which
// must copy out everything it needs before returning.
template <class Use>
auto with_document(std::string_view json, Use&& use) {
  const auto run = [&](dom::parser& parser) {
    // The view is not padded, so let the parser copy it into its own padded
    // buffer (realloc_if_needed = true); the buffer is reused across calls.
    dom::element root;
    auto error = parser.parse(json.data(), json.size(), true).get(root);
    std::optional<std::string> widened;
    if (error == simdjson::NUMBER_ERROR && (widened = widen_big_integers(json))) {
      error = parser.parse(widened->data(), widened->size(), true).get(root);
    }
    if (error) fail_parse(error);
    return use(root);
  };
  if (json.size() <= kReusableParserBytes) return run(thread_parser());
  dom::parser big = make_parser(json.size());
  return run(big);
}

// The fields of a metric object that matter, found in one pass over its
// keys (looking each up by name would scan the object four times). The first
// occurrence of a repeated key wins.
struct Fields {
  std::optional<dom::element> id;
  std::optional<dom::element> type;
  std::optional<dom::element> delta;
  std::optional<dom::element> value;
  std::optional<dom::element> labels;
};

Fields collect_fields(dom::object object) {
  Fields f;
  for (dom::key_value_pair field : object) {
    const std::string_view key = field.key;
    if (key == "id") {
      if (!f.id) f.id = field.value;
    } else if (key == "type") {
      if (!f.type) f.type = field.value;
    } else if (key == "delta") {
      if (!f.delta) f.delta = field.value;
    } else if (key == "value") {
      if (!f.value) f.value = field.value;
    } else if (key == "labels") {
      if (!f.labels) f.labels = field.value;
    }
  }
  return f;
}

struct Identity {
  std::string_view id;
  MetricType type;
};

Identity decode_identity(const Fields& f) {
  if (!f.id) throw InvalidInput("missing \"id\"");
  std::string_view id;
  if (f.id->get(id) != simdjson::SUCCESS) throw InvalidInput("\"id\" must be a string");
  if (auto problem = validate_name(id)) throw InvalidInput(*problem);

  if (!f.type) throw InvalidInput("missing \"type\"");
  std::string_view type_text;
  if (f.type->get(type_text) != simdjson::SUCCESS) {
    throw InvalidInput("\"type\" must be a string");
  }
  const auto type = parse_type(type_text);
  if (!type) {
    throw InvalidInput("unknown metric type (want \"gauge\" or \"counter\")");
  }
  return {id, *type};
}

dom::object as_object(dom::element element) {
  dom::object object;
  if (element.get(object) != simdjson::SUCCESS) {
    throw InvalidInput("a metric must be a JSON object");
  }
  return object;
}

// The labels object of a metric or an envelope, validated (names, values,
// repeats), empty values kept: they mean "remove" when merged.
std::vector<Label> decode_label_list(dom::element element) {
  dom::object object;
  if (element.get(object) != simdjson::SUCCESS) {
    throw InvalidInput("\"labels\" must be an object of strings");
  }
  std::vector<Label> out;
  for (dom::key_value_pair field : object) {
    if (out.size() == kMaxLabels * 2) {
      throw InvalidInput("too many labels (at most " + std::to_string(kMaxLabels) + ")");
    }
    const std::string_view name = field.key;
    if (auto problem = validate_label_name(name)) throw InvalidInput(*problem);
    std::string_view value;
    if (field.value.get(value) != simdjson::SUCCESS) {
      throw InvalidInput("label \"" + std::string(name) + "\": value must be a string");
    }
    if (auto problem = validate_label_value(name, value)) throw InvalidInput(*problem);
    for (const Label& seen : out) {
      if (seen.name == name) {
        throw InvalidInput("label \"" + std::string(name) + "\" is given twice");
      }
    }
    out.push_back({std::string(name), std::string(value)});
  }
  return out;
}

Labels labels_over(const Labels& base, const Fields& f) {
  if (!f.labels) return base;
  return Labels::merge(base, decode_label_list(*f.labels));
}

Update decode_update_element(dom::element element, const Labels& base) {
  const Fields f = collect_fields(as_object(element));
  const Identity identity = decode_identity(f);
  Update metric;
  metric.labels = labels_over(base, f);
  metric.type = identity.type;
  if (identity.type == MetricType::counter) {
    // Only a JSON integer that fits int64 is a delta: simdjson types a
    // fraction or an exponent as double and anything above INT64_MAX as
    // uint64, so checking the tape type rejects 1.5, 1e3 and 2^63 alike.
    if (!f.delta || f.delta->type() != dom::element_type::INT64) {
      throw InvalidInput("counter needs an integer \"delta\"");
    }
    metric.delta = f.delta->get_int64().value_unsafe();
  } else {
    double number = 0;
    if (!f.value || !f.value->is_number() ||
        f.value->get_double().get(number) != simdjson::SUCCESS || !std::isfinite(number)) {
      throw InvalidInput("gauge needs a numeric \"value\"");
    }
    metric.value = number;
  }
  metric.id.assign(identity.id);
  return metric;
}

}  // namespace

Update decode_update(std::string_view json) {
  return with_document(json,
                       [](dom::element root) { return decode_update_element(root, Labels{}); });
}

ValueQuery decode_value_query(std::string_view json) {
  return with_document(json, [](dom::element root) {
    const Fields f = collect_fields(as_object(root));
    const Identity identity = decode_identity(f);
    ValueQuery query{MetricKey{identity.type, std::string(identity.id)}, std::nullopt};
    if (f.labels) query.labels = Labels::merge(Labels{}, decode_label_list(*f.labels));
    return query;
  });
}

DecodedBatch decode_updates(std::string_view json, std::size_t max_items) {
  return with_document(json, [max_items](dom::element root) {
    DecodedBatch batch;
    dom::array array;
    dom::object envelope;
    if (root.get(envelope) == simdjson::SUCCESS) {
      batch.envelope = true;
      std::optional<dom::element> labels;
      std::optional<dom::element> metrics;
      std::optional<dom::element> key;
      for (dom::key_value_pair field : envelope) {
        if (field.key == "labels" && !labels) labels = field.value;
        if (field.key == "metrics" && !metrics) metrics = field.value;
        if (field.key == "idempotency_key" && !key) key = field.value;
      }
      if (key) {
        std::string_view text;
        if (key->get(text) != simdjson::SUCCESS) {
          throw InvalidInput("envelope: \"idempotency_key\" must be a string");
        }
        batch.idempotency_key.emplace(text);
      }
      if (labels) {
        try {
          batch.labels = Labels::merge(Labels{}, decode_label_list(*labels));
        } catch (const InvalidInput& e) {
          throw InvalidInput(std::string("envelope: ") + e.what());
        }
      }
      if (!metrics) {
        throw InvalidInput(
            "expected a JSON array of metrics or an envelope {\"labels\":{...},\"metrics\":[...]}");
      }
      if (metrics->get(array) != simdjson::SUCCESS) {
        throw InvalidInput("envelope: \"metrics\" must be an array of metrics");
      }
    } else if (root.get(array) != simdjson::SUCCESS) {
      throw InvalidInput(
          "expected a JSON array of metrics or an envelope {\"labels\":{...},\"metrics\":[...]}");
    }
    std::vector<Update>& out = batch.updates;
    // size() saturates for huge arrays; the loop below enforces the bound.
    out.reserve(std::min(array.size(), max_items));
    for (dom::element element : array) {
      if (out.size() == max_items) {
        throw InvalidInput("too many metrics in one batch (at most " + std::to_string(max_items) +
                           ")");
      }
      // Element errors are reported with the element's index; the message
      // is only built on that path.
      try {
        out.push_back(decode_update_element(element, batch.labels));
      } catch (const InvalidInput& e) {
        throw InvalidInput("metric " + std::to_string(out.size()) + ": " + e.what());
      }
    }
    return batch;
  });
}

}  // namespace metrics::core
