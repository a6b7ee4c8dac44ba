// Label matchers over RE2 (fully anchored, as PromQL defines them) and Go's
// template expansion for label_replace.
#include "metrics/query/matcher.hpp"

#include <re2/re2.h>

#include "metrics/query/error.hpp"

namespace metrics::query {

Matcher Matcher::make(MatchType type, std::string name, std::string value) {
  Matcher m;
  m.type_ = type;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  if (type == MatchType::regex || type == MatchType::not_regex) {
    RE2::Options opts;
    opts.set_log_errors(false);
    auto re = std::make_shared<RE2>("^(?:" + m.value_ + ")$", opts);
    if (!re->ok()) {
      throw QueryError(ErrorType::bad_data, "error parsing regexp: " + re->error());
    }
    m.re_ = std::move(re);
  }
  return m;
}

bool Matcher::matches(std::string_view value) const {
  switch (type_) {
    case MatchType::equal:
      return value == value_;
    case MatchType::not_equal:
      return value != value_;
    case MatchType::regex:
      return RE2::FullMatch(value, *re_);
    case MatchType::not_regex:
      return !RE2::FullMatch(value, *re_);
  }
  return false;
}

namespace {
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
}  // namespace

std::string expand_template(std::string_view tmpl, const std::string_view* groups, int n_groups,
                            const std::string* names) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    std::size_t dollar = tmpl.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    out.append(tmpl.substr(i, dollar - i));
    std::string_view rest = tmpl.substr(dollar + 1);
    if (!rest.empty() && rest[0] == '$') {
      out += '$';
      i = dollar + 2;
      continue;
    }
    // Go's extract(): $name or ${name}; a name is [A-Za-z0-9_]+.
    std::string_view name;
    std::size_t consumed = 0;
    bool ok = false;
    if (!rest.empty() && rest[0] == '{') {
      std::size_t j = 1;
      while (j < rest.size() && is_name_char(rest[j]))
        ++j;
      if (j > 1 && j < rest.size() && rest[j] == '}') {
        name = rest.substr(1, j - 1);
        consumed = j + 1;
        ok = true;
      }
    } else {
      std::size_t j = 0;
      while (j < rest.size() && is_name_char(rest[j]))
        ++j;
      if (j > 0) {
        name = rest.substr(0, j);
        consumed = j;
        ok = true;
      }
    }
    if (!ok) {  // malformed: the '$' is kept as it is
      out += '$';
      i = dollar + 1;
      continue;
    }
    i = dollar + 1 + consumed;
    // A number (all digits, no overflow) names a group by index.
    bool numeric = true;
    long long num = 0;
    for (char c : name) {
      if (c < '0' || c > '9' || num >= 100000000) {
        numeric = false;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (numeric) {
      if (num < n_groups) out.append(groups[num]);
    } else {
      for (int g = 0; g < n_groups; ++g) {
        if (names[g] == name) {
          out.append(groups[g]);
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace metrics::query
