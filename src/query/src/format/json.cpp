// The HTTP API's JSON shapes for query results (Prometheus's
// api/v1 jsoniter encoders: labels sorted, values as strings).
#include "metrics/query/json.hpp"

#include <type_traits>

namespace metrics::query {
namespace {

void json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      // encoding/json's HTML-safe escapes, which Prometheus's jsoniter
      // configuration keeps.
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void point(std::string& out, std::int64_t t, double v) {
  out += '[';
  out += format_timestamp(t);
  out += ",\"";
  out += format_value(v);
  out += "\"]";
}

void metric(std::string& out, const LabelSet& labels) {
  out += "\"metric\":{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    json_string(out, labels[i].name);
    out += ':';
    json_string(out, labels[i].value);
  }
  out += '}';
}

}  // namespace

void append_labels(std::string& out, const LabelSet& labels) {
  out += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    json_string(out, labels[i].name);
    out += ':';
    json_string(out, labels[i].value);
  }
  out += '}';
}

void append_json_string(std::string& out, std::string_view s) {
  json_string(out, s);
}

std::string encode_data(const Result& result) {
  std::string out;
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, Scalar>) {
          out += "{\"resultType\":\"scalar\",\"result\":";
          point(out, r.t, r.v);
          out += '}';
        } else if constexpr (std::is_same_v<T, String>) {
          out += "{\"resultType\":\"string\",\"result\":[";
          out += format_timestamp(r.t);
          out += ',';
          json_string(out, r.v);
          out += "]}";
        } else if constexpr (std::is_same_v<T, Vector>) {
          out += "{\"resultType\":\"vector\",\"result\":[";
          for (std::size_t i = 0; i < r.size(); ++i) {
            if (i > 0) out += ',';
            out += '{';
            metric(out, r[i].metric);
            out += ",\"value\":";
            point(out, r[i].t, r[i].v);
            out += '}';
          }
          out += "]}";
        } else {
          out += "{\"resultType\":\"matrix\",\"result\":[";
          for (std::size_t i = 0; i < r.size(); ++i) {
            if (i > 0) out += ',';
            out += '{';
            metric(out, r[i].metric);
            out += ",\"values\":[";
            for (std::size_t j = 0; j < r[i].points.size(); ++j) {
              if (j > 0) out += ',';
              point(out, r[i].points[j].t, r[i].points[j].v);
            }
            out += "]}";
          }
          out += "]}";
        }
      },
      result);
  return out;
}

std::string encode_error(const QueryError& error) {
  std::string out = "{\"status\":\"error\",\"errorType\":";
  json_string(out, error_type_name(error.type()));
  out += ",\"error\":";
  json_string(out, error.what());
  out += '}';
  return out;
}

}  // namespace metrics::query
