// Go's fmt for the values alert templates print, byte for byte: a float as
// %v prints it (strconv 'g' with the shortest digits: 2.5e+09, 0.25, 1e-05),
// %.4g, and Sprintf with the verbs templates use (%v %s %d %f %e %g %q %x
// %t %%, flags, width and precision; Go's %!verb(type=value) on a mismatch).
//
//   rules::go_format_float(2.5e9, 'g', -1);   // "2.5e+09"
//   rules::go_sprintf("%.2f%%", {rules::GoArg(12.345)});  // "12.35%"
//
// Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace metrics::rules {

// strconv.FormatFloat(v, fmt, prec, 64) for fmt 'e', 'f' or 'g' (prec -1:
// the shortest digits that read back as v).
[[nodiscard]] std::string go_format_float(double v, char fmt, int prec);

// A value as a Go template passes it to a function: nil, bool, int (number
// literals without a dot), float64, string, or map[string]string.
using GoMap = std::map<std::string, std::string>;
struct GoNil {};
using GoArg = std::variant<GoNil, bool, std::int64_t, double, std::string, GoMap>;

// fmt.Sprint of one value (%v).
[[nodiscard]] std::string go_print(const GoArg& v);
// Go's type name, for messages: "float64", "string", "int", ...
[[nodiscard]] std::string_view go_type_name(const GoArg& v);
// fmt.Sprintf.
[[nodiscard]] std::string go_sprintf(std::string_view format, std::span<const GoArg> args);
// strconv.Quote (ASCII subset: control characters escaped, UTF-8 kept).
[[nodiscard]] std::string go_quote(std::string_view s);

}  // namespace metrics::rules
