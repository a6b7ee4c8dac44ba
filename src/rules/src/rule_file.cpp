#include "metrics/rules/rule_file.hpp"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include "metrics/query/error.hpp"

namespace metrics::rules {

std::optional<std::chrono::milliseconds> parse_prometheus_duration(std::string_view s) {
  if (s == "0") return std::chrono::milliseconds{0};
  if (s.empty()) return std::nullopt;
  // Units in the only order model.ParseDuration's pattern allows.
  static constexpr std::array<std::pair<std::string_view, std::int64_t>, 7> kUnits{{
      {"y", 1000LL * 60 * 60 * 24 * 365},
      {"w", 1000LL * 60 * 60 * 24 * 7},
      {"d", 1000LL * 60 * 60 * 24},
      {"h", 1000LL * 60 * 60},
      {"m", 1000LL * 60},
      {"s", 1000},
      {"ms", 1},
  }};
  std::size_t next_unit = 0;
  std::size_t i = 0;
  std::int64_t total = 0;
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9')
      ++j;
    if (j == i) return std::nullopt;
    const std::string_view digits = s.substr(i, j - i);
    std::size_t unit = kUnits.size();
    for (std::size_t u = next_unit; u < kUnits.size(); ++u) {
      const auto name = kUnits[u].first;
      if (s.substr(j, name.size()) != name) continue;
      // "m" must not swallow the "m" of "ms".
      if (name == "m" && s.substr(j, 2) == "ms") continue;
      unit = u;
      break;
    }
    if (unit == kUnits.size()) return std::nullopt;
    std::int64_t n = 0;
    for (const char c : digits) {
      if (n > (INT64_MAX - 9) / 10) return std::nullopt;
      n = n * 10 + (c - '0');
    }
    const std::int64_t mult = kUnits[unit].second;
    // Go's check: the total in nanoseconds must fit an int64.
    if (n > INT64_MAX / 1'000'000 / mult) return std::nullopt;
    total += n * mult;
    if (total > INT64_MAX / 1'000'000) return std::nullopt;
    next_unit = unit + 1;
    i = j + kUnits[unit].first.size();
  }
  return std::chrono::milliseconds{total};
}

std::string format_prometheus_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string r;
  const auto f = [&](const char* unit, std::int64_t mult, bool exact) {
    if (exact && ms % mult != 0) return;
    if (const std::int64_t v = ms / mult; v > 0) {
      r += std::to_string(v) + unit;
      ms -= v * mult;
    }
  };
  f("y", 1000LL * 60 * 60 * 24 * 365, true);
  f("w", 1000LL * 60 * 60 * 24 * 7, true);
  f("d", 1000LL * 60 * 60 * 24, false);
  f("h", 1000LL * 60 * 60, false);
  f("m", 1000LL * 60, false);
  f("s", 1000, false);
  f("ms", 1, false);
  return r;
}

bool is_valid_label_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool is_valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

namespace {

bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

int line_of(const YAML::Node& n) {
  return n.Mark().line + 1;
}

// yaml-cpp 0.7 accepts a quoted scalar that the end of the input cuts off
// (yaml.v3 and so promtool refuse it): the line where such a scalar starts,
// or 0. Tracks comments, quoted scalars and block scalars (| and >), whose
// lines may hold any quote.
int unterminated_quote(std::string_view s) {
  int line = 1;
  std::size_t i = 0;
  int block_indent = -1;  // inside a block scalar: the indentation of its key
  while (i < s.size()) {
    // At a line start: measure the indentation.
    std::size_t j = i;
    while (j < s.size() && s[j] == ' ')
      ++j;
    const auto indent = static_cast<int>(j - i);
    const bool blank = j >= s.size() || s[j] == '\n' || s[j] == '\r';
    if (block_indent >= 0 && (blank || indent > block_indent)) {
      const auto eol = s.find('\n', i);
      if (eol == std::string_view::npos) return 0;
      i = eol + 1;
      ++line;
      continue;
    }
    block_indent = -1;
    char prev = ' ';  // the last non-space character on this line
    bool scalar_start = true;
    for (i = j; i < s.size() && s[i] != '\n'; ++i) {
      const char c = s[i];
      if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
        while (i < s.size() && s[i] != '\n')
          ++i;
        break;
      }
      if ((c == '"' || c == '\'') && scalar_start) {
        const int start = line;
        ++i;
        while (true) {
          if (i >= s.size()) return start;
          if (s[i] == '\n') ++line;
          if (c == '"' && s[i] == '\\') {
            if (i + 1 < s.size() && s[i + 1] == '\n') ++line;
            i += 2;
            continue;
          }
          if (s[i] == c) {
            if (c == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
              i += 2;
              continue;
            }
            break;
          }
          ++i;
        }
        prev = c;
        scalar_start = false;
        continue;
      }
      if ((c == '|' || c == '>') && scalar_start) {
        block_indent = indent;
      }
      if (c != ' ' && c != '\t') {
        scalar_start = c == ':' || c == '-' || c == '[' || c == '{' || c == ',' || c == '?';
        prev = c;
      } else {
        scalar_start = prev == ':' || prev == '-' || prev == '[' || prev == '{' || prev == ',' ||
                       prev == '?' || prev == ' ';
      }
    }
    if (i < s.size()) {
      ++i;
      ++line;
    }
  }
  return 0;
}

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(int line, const std::string& reason) const {
    throw RuleFileError(file_, line, reason);
  }

  std::vector<GroupSpec> load(std::string_view text) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::Exception& e) {
      fail(e.mark.line + 1, "yaml: " + e.msg);
    }
    if (const int line = unterminated_quote(text); line != 0)
      fail(line, "yaml: found unexpected end of stream while scanning a quoted scalar");
    // yaml.v3 reads the first document only.
    if (docs.empty() || docs[0].IsNull()) return {};
    const YAML::Node& root = docs[0];
    if (!root.IsMap())
      fail(line_of(root), "yaml: cannot unmarshal " + kind(root) + " into rule groups");
    std::vector<GroupSpec> groups;
    YAML::Node groups_node;
    for_each_key(root, "rule groups", [&](const std::string& key, const YAML::Node& v) {
      if (key != "groups") unknown(v, key, "rulefmt.RuleGroups");
      groups_node = v;
    });
    if (!groups_node || groups_node.IsNull()) return {};
    if (!groups_node.IsSequence())
      fail(line_of(groups_node),
           "yaml: cannot unmarshal " + kind(groups_node) + " into []rulefmt.RuleGroup");
    std::set<std::string> names;
    for (const auto& g : groups_node) {
      GroupSpec group = parse_group(g);
      if (group.name.empty()) fail(group.line, "Groupname must not be empty");
      if (!names.insert(group.name).second)
        fail(group.line, "groupname: \"" + group.name + "\" is repeated in the same file");
      groups.push_back(std::move(group));
    }
    return groups;
  }

 private:
  static std::string kind(const YAML::Node& n) {
    if (n.IsSequence()) return "!!seq";
    if (n.IsMap()) return "!!map";
    if (n.IsNull()) return "!!null";
    return "!!str";
  }

  [[noreturn]] void unknown(const YAML::Node& v, const std::string& key,
                            const std::string& type) const {
    // The key's own line: the value's mark is at most that line for block
    // mappings; yaml-cpp gives the value's, which is the same line or the next.
    fail(key_line_, "yaml: unmarshal errors: field " + key + " not found in type " + type);
    (void)v;
  }

  // Iterates a mapping, refusing repeated keys as yaml.v3 does.
  template <typename F>
  void for_each_key(const YAML::Node& map, const std::string& what, F&& f) {
    (void)what;
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies: yaml-cpp's iterator hands out a temporary pair.
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      if (!k.IsScalar()) fail(line_of(k), "yaml: mapping keys must be scalars");
      const std::string key = k.Scalar();
      key_line_ = line_of(k);
      if (const auto s = seen.find(key); s != seen.end()) {
        fail(line_of(k), "yaml: unmarshal errors: mapping key \"" + key +
                             "\" already defined at line " + std::to_string(s->second));
      }
      seen.emplace(key, line_of(k));
      f(key, v);
    }
  }

  std::string scalar(const YAML::Node& v, const std::string& into = "string") {
    if (v.IsNull()) return "";
    if (!v.IsScalar())
      fail(line_of(v), "yaml: unmarshal errors: cannot unmarshal " + kind(v) + " into " + into);
    return v.Scalar();
  }

  std::chrono::milliseconds duration(const YAML::Node& v) {
    if (v.IsNull()) return std::chrono::milliseconds{0};
    const std::string s = scalar(v, "model.Duration");
    if (s.empty()) fail(line_of(v), "empty duration string");
    const auto d = parse_prometheus_duration(s);
    if (!d) fail(line_of(v), "not a valid duration string: \"" + s + "\"");
    return *d;
  }

  std::map<std::string, std::string> string_map(const YAML::Node& v) {
    std::map<std::string, std::string> out;
    if (v.IsNull()) return out;
    if (!v.IsMap())
      fail(line_of(v),
           "yaml: unmarshal errors: cannot unmarshal " + kind(v) + " into map[string]string");
    for_each_key(v, "map", [&](const std::string& key, const YAML::Node& val) {
      out[key] = scalar(val);
      value_lines_[key] = line_of(val);
    });
    return out;
  }

  GroupSpec parse_group(const YAML::Node& g) {
    GroupSpec group;
    group.file = file_;
    group.line = line_of(g);
    if (g.IsNull()) return group;
    if (!g.IsMap())
      fail(line_of(g),
           "yaml: unmarshal errors: cannot unmarshal " + kind(g) + " into rulefmt.RuleGroup");
    YAML::Node rules;
    for_each_key(g, "group", [&](const std::string& key, const YAML::Node& v) {
      if (key == "name") {
        group.name = scalar(v);
      } else if (key == "interval") {
        group.interval = duration(v);
      } else if (key == "limit") {
        const std::string s = scalar(v, "int");
        if (!s.empty()) {
          try {
            std::size_t used = 0;
            group.limit = std::stoll(s, &used, 0);
            if (used != s.size()) throw std::invalid_argument(s);
          } catch (const std::exception&) {
            // yaml.v3 also decodes a float into an int, truncating it.
            try {
              std::size_t used = 0;
              const double d = std::stod(s, &used);
              if (used != s.size() || !(d > -9.2e18 && d < 9.2e18)) throw std::invalid_argument(s);
              group.limit = static_cast<std::int64_t>(d);
            } catch (const std::exception&) {
              fail(line_of(v),
                   "yaml: unmarshal errors: cannot unmarshal !!str `" + s + "` into int");
            }
          }
        }
      } else if (key == "rules") {
        rules = v;
      } else {
        unknown(v, key, "rulefmt.RuleGroup");
      }
    });
    if (rules && !rules.IsNull()) {
      if (!rules.IsSequence())
        fail(line_of(rules), "yaml: unmarshal errors: cannot unmarshal " + kind(rules) +
                                 " into []rulefmt.RuleNode");
      std::size_t index = 0;
      for (const auto& r : rules)
        group.rules.push_back(parse_rule(r, group.name, ++index));
    }
    return group;
  }

  RuleSpec parse_rule(const YAML::Node& r, const std::string& group, std::size_t index) {
    RuleSpec rule;
    rule.line = line_of(r);
    if (!r.IsMap() && !r.IsNull())
      fail(line_of(r),
           "yaml: unmarshal errors: cannot unmarshal " + kind(r) + " into rulefmt.RuleNode");
    std::string record, alert;
    int record_line = 0, alert_line = 0, expr_line = 0, for_line = 0, keep_line = 0,
        annotations_line = 0;
    bool has_for = false, has_keep = false;
    std::map<std::string, int> label_lines, annotation_lines;
    if (r.IsMap()) {
      for_each_key(r, "rule", [&](const std::string& key, const YAML::Node& v) {
        if (key == "record") {
          record = scalar(v);
          record_line = line_of(v);
        } else if (key == "alert") {
          alert = scalar(v);
          alert_line = line_of(v);
        } else if (key == "expr") {
          rule.expr = scalar(v);
          expr_line = line_of(v);
        } else if (key == "for") {
          rule.for_duration = duration(v);
          for_line = line_of(v);
          has_for = true;
        } else if (key == "keep_firing_for") {
          rule.keep_firing_for = duration(v);
          keep_line = line_of(v);
          has_keep = true;
        } else if (key == "labels") {
          value_lines_.clear();
          rule.labels = string_map(v);
          label_lines = value_lines_;
        } else if (key == "annotations") {
          value_lines_.clear();
          rule.annotations = string_map(v);
          annotation_lines = value_lines_;
          annotations_line = line_of(v);
        } else {
          unknown(v, key, "rulefmt.RuleNode");
        }
      });
    }
    (void)has_for;
    (void)has_keep;
    const std::string shown = !alert.empty() ? alert : record;
    const auto bad = [&](int line, const std::string& reason) {
      fail(line != 0 ? line : rule.line, "group \"" + group + "\", rule " + std::to_string(index) +
                                             ", \"" + shown + "\": " + reason);
    };
    if (!record.empty() && !alert.empty())
      bad(record_line, "only one of 'record' and 'alert' must be set");
    if (record.empty() && alert.empty()) bad(rule.line, "one of 'record' or 'alert' must be set");
    if (rule.expr.empty()) {
      bad(expr_line, "field 'expr' must be set in rule");
    } else {
      try {
        rule.parsed = query::parse(rule.expr);
      } catch (const query::QueryError& e) {
        bad(expr_line, std::string("could not parse expression: ") + e.what());
      }
    }
    if (!record.empty()) {
      rule.kind = RuleKind::recording;
      rule.name = record;
      if (!rule.annotations.empty())
        bad(annotations_line, "invalid field 'annotations' in recording rule");
      if (rule.for_duration.count() != 0) bad(for_line, "invalid field 'for' in recording rule");
      if (rule.keep_firing_for.count() != 0)
        bad(keep_line, "invalid field 'keep_firing_for' in recording rule");
      if (!is_valid_metric_name(record)) bad(record_line, "invalid recording rule name: " + record);
    } else {
      rule.kind = RuleKind::alerting;
      rule.name = alert;
      (void)alert_line;
    }
    for (const auto& [k, v] : rule.labels) {
      if (!is_valid_label_name(k) || k == "__name__")
        bad(label_lines[k], "invalid label name: " + k);
      if (!valid_utf8(v)) bad(label_lines[k], "invalid label value: " + v);
    }
    for (const auto& [k, v] : rule.annotations) {
      if (!is_valid_label_name(k)) bad(annotation_lines[k], "invalid annotation name: " + k);
    }
    if (rule.kind == RuleKind::alerting) {
      const std::string tname = "__alert_" + alert;
      for (const auto& [k, v] : rule.annotations) {
        try {
          rule.annotation_templates.emplace(k, Template::parse(v, tname));
        } catch (const TemplateError& e) {
          bad(annotation_lines[k], "annotation \"" + k + "\": " + e.what());
        }
      }
      for (const auto& [k, v] : rule.labels) {
        try {
          rule.label_templates.emplace(k, Template::parse(v, tname));
        } catch (const TemplateError& e) {
          bad(label_lines[k], "label \"" + k + "\": " + e.what());
        }
      }
    }
    return rule;
  }

  std::string file_;
  int key_line_ = 0;
  std::map<std::string, int> value_lines_;
};

bool has_glob(std::string_view s) {
  return s.find_first_of("*?[") != std::string_view::npos;
}

}  // namespace

std::vector<GroupSpec> parse_rule_file(std::string_view text, const std::string& file) {
  Loader loader(file);
  return loader.load(text);
}

std::vector<GroupSpec> load_rule_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuleFileError(path, 0, "cannot open the rule file");
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw RuleFileError(path, 0, "cannot read the rule file");
  return parse_rule_file(buf.str(), path);
}

std::vector<std::string> expand_rule_paths(std::span<const std::string> patterns) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& pattern : patterns) {
    if (!has_glob(pattern)) {
      if (seen.insert(pattern).second) out.push_back(pattern);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      std::vector<std::string> matched(g.gl_pathv, g.gl_pathv + g.gl_pathc);
      std::sort(matched.begin(), matched.end());
      for (auto& m : matched) {
        if (seen.insert(m).second) out.push_back(std::move(m));
      }
    }
    globfree(&g);
    if (rc != 0 && rc != GLOB_NOMATCH) throw RuleFileError(pattern, 0, "cannot expand the glob");
  }
  return out;
}

std::vector<GroupSpec> load_rule_files(std::span<const std::string> patterns) {
  std::vector<GroupSpec> out;
  for (const auto& path : expand_rule_paths(patterns)) {
    auto groups = load_rule_file(path);
    for (auto& g : groups)
      out.push_back(std::move(g));
  }
  return out;
}

}  // namespace metrics::rules
