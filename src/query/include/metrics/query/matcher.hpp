// Label matchers of a PromQL selector: `=`, `!=`, `=~`, `!~`. Regular
// expressions are RE2 syntax, fully anchored (`^(?:re)$`), as in Prometheus;
// an absent label matches as the empty string.
//
//   auto m = query::Matcher::make(query::MatchType::regex, "job", "api|web");
//   m.matches("api");  // true
//
// Immutable after make(): safe to share between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace metrics::query {

enum class MatchType { equal, not_equal, regex, not_regex };

class Matcher {
 public:
  // Throws QueryError (bad_data) when the regular expression does not compile.
  [[nodiscard]] static Matcher make(MatchType type, std::string name, std::string value);

  [[nodiscard]] bool matches(std::string_view value) const;
  [[nodiscard]] MatchType type() const noexcept { return type_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& value() const noexcept { return value_; }

 private:
  MatchType type_ = MatchType::equal;
  std::string name_;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;
};

// Go's regexp.Regexp.ExpandString for label_replace: $1, ${1}, $name,
// ${name}, $$; an unknown group expands to "". `groups` are the submatches
// (0 = the whole match), `names` their names ("" for unnamed).
[[nodiscard]] std::string expand_template(std::string_view tmpl, const std::string_view* groups,
                                          int n_groups, const std::string* names);

}  // namespace metrics::query
