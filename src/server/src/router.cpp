#include "metrics/server/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace metrics::server {
namespace http = boost::beast::http;

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
      continue;
    }
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]);
    int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// Takes the next '/'-separated segment off `rest`; false when none is left.
bool next_segment(std::string_view& rest, bool& more, std::string_view& segment) {
  if (!more) return false;
  const auto slash = rest.find('/');
  segment = rest.substr(0, slash);
  if (slash == std::string_view::npos) {
    more = false;
    rest = {};
  } else {
    rest.remove_prefix(slash + 1);
  }
  return true;
}

bool allows(const RouteSpec& spec, http::verb method) noexcept {
  return std::find(spec.methods.begin(), spec.methods.end(), method) != spec.methods.end();
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) {
  return decode(in, out, false);
}

bool QueryParams::parse(std::string_view query, std::span<const std::string_view> keys) {
  std::string key;
  std::string value;
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    if (piece.empty()) continue;
    const auto eq = piece.find('=');
    if (!decode(piece.substr(0, eq), key, true)) return false;
    if (!decode(eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1), value,
                true)) {
      return false;
    }
    const bool wanted = keys.empty() || std::any_of(keys.begin(), keys.end(),
                                                    [&](auto k) { return !k.empty() && k == key; });
    if (wanted) items_.emplace_back(key, value);
  }
  return true;
}

std::optional<std::string_view> QueryParams::get(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> QueryParams::all(std::string_view key) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : items_) {
    if (k == key) out.emplace_back(v);
  }
  return out;
}

std::string_view RouteMatch::param(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < params; ++i) {
    if (param_names[i] == name) return param_values[i];
  }
  return {};
}

void RouteMatch::reset() {
  route = nullptr;
  params = 0;
  query.clear();
  error.clear();
  allow.clear();
  errors = ErrorFormat::text;
}

RouteTable::RouteTable(std::span<const RouteSpec> routes) : routes_(routes) {
  for (const auto& spec : routes_) {
    Compiled c{&spec, {}, false, false, {}};
    std::string_view p = spec.pattern;
    if (p.empty() || p.front() != '/') {
      throw std::invalid_argument("route pattern must start with '/': " + std::string(p));
    }
    if (p == "/") {
      c.root = true;
      compiled_.push_back(std::move(c));
      continue;
    }
    p.remove_prefix(1);
    if (p.ends_with('/')) {
      c.optional_trailing_slash = true;
      p.remove_suffix(1);
    }
    bool more = true;
    std::string_view seg;
    std::size_t params = 0;
    while (next_segment(p, more, seg)) {
      Segment s;
      if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
        seg = seg.substr(1, seg.size() - 2);
        const auto colon = seg.find(':');
        s.is_param = true;
        s.name = seg.substr(0, colon);
        if (colon != std::string_view::npos) s.label = seg.substr(colon + 1);
        if (++params > RouteMatch::kMaxParams) {
          throw std::invalid_argument("too many parameters in route pattern " +
                                      std::string(spec.pattern));
        }
      } else {
        s.literal = seg;
      }
      c.segments.push_back(s);
    }
    if (!c.segments.empty() && !c.segments.front().is_param) c.head = c.segments.front().literal;
    compiled_.push_back(std::move(c));
  }
}

RouteTable::Outcome RouteTable::match_path(const Compiled& c, std::string_view path,
                                           RouteMatch* out, std::string_view* missing) {
  if (c.root) return path == "/" ? Outcome::match : Outcome::no;
  if (path.empty() || path.front() != '/') return Outcome::no;
  path.remove_prefix(1);
  if (!c.head.empty() &&
      (!path.starts_with(c.head) || (path.size() > c.head.size() && path[c.head.size()] != '/'))) {
    return Outcome::no;
  }
  bool more = true;
  std::string_view rest = path;
  std::string_view seg;
  for (const auto& s : c.segments) {
    const bool have = next_segment(rest, more, seg);
    if (s.is_param) {
      if (!have || seg.empty()) {
        if (!s.label.empty()) {
          *missing = s.label;
          return Outcome::missing;
        }
        if (!have) return Outcome::no;
      }
    } else if (!have || seg != s.literal) {
      return Outcome::no;
    }
  }
  if (more) {
    // One trailing slash is allowed where the pattern says so.
    if (!(c.optional_trailing_slash && rest.empty())) return Outcome::no;
  }
  if (out != nullptr) {
    rest = path;
    more = true;
    out->params = 0;
    for (const auto& s : c.segments) {
      (void)next_segment(rest, more, seg);
      if (!s.is_param) continue;
      const std::size_t i = out->params++;
      out->param_names[i] = s.name;
      if (!percent_decode(seg, out->param_values[i]) && out->error.empty()) {
        out->error = "malformed percent-encoding in path";
      }
    }
  }
  return Outcome::match;
}

void RouteTable::match(http::verb method, std::string_view target, RouteMatch& out) const {
  out.reset();
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  std::string_view missing;
  bool path_known = false;
  for (const auto& c : compiled_) {
    std::string_view row_missing;
    const bool method_ok = allows(*c.spec, method);
    const auto outcome = match_path(c, target, method_ok ? &out : nullptr, &row_missing);
    if (outcome == Outcome::missing && missing.empty()) missing = row_missing;
    if (outcome != Outcome::match) continue;
    if (!method_ok) {
      if (!path_known) out.errors = c.spec->errors;
      path_known = true;
      continue;
    }
    out.route = c.spec;
    out.errors = c.spec->errors;
    if (!c.spec->query.front().empty() && !query.empty() &&
        !out.query.parse(query, c.spec->query) && out.error.empty()) {
      out.error = "malformed percent-encoding in query string";
    }
    return;
  }
  if (path_known) {
    // 405: every method of every row that matches the path, in table order.
    for (const auto& c : compiled_) {
      std::string_view ignored;
      if (match_path(c, target, nullptr, &ignored) != Outcome::match) continue;
      for (auto m : c.spec->methods) {
        if (m == http::verb::unknown) continue;
        const auto name = http::to_string(m);
        bool seen = false;
        for (std::string_view rest = out.allow; !rest.empty();) {
          const auto comma = rest.find(", ");
          if (rest.substr(0, comma) == std::string_view(name.data(), name.size())) seen = true;
          rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 2);
        }
        if (seen) continue;
        if (!out.allow.empty()) out.allow += ", ";
        out.allow.append(name.data(), name.size());
      }
    }
    return;
  }
  out.error = missing.empty() ? "unknown path" : "missing " + std::string(missing);
}

ErrorFormat RouteTable::error_format(std::string_view target) const {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  for (const auto& c : compiled_) {
    std::string_view ignored;
    if (match_path(c, target, nullptr, &ignored) == Outcome::match) return c.spec->errors;
  }
  return ErrorFormat::text;
}

}  // namespace metrics::server
