// Alert templates: the part of Go's text/template that Prometheus rule
// labels and annotations use, with Prometheus's variables and functions.
//
//   auto t = rules::Template::parse("{{ $labels.instance }} at {{ $value | humanize }}",
//                                   "__alert_HighHeap");
//   std::string text = t.expand({.labels = {{"instance", "a"}}, .value = 2.5e9});
//   // "a at 2.5G"
//
// Syntax: text, {{ pipeline }} with - trim markers, comments, if / else if /
// else / end, with, range over a map, variables ($labels, $value,
// $externalLabels, $externalURL are predeclared as in Prometheus; $ and :=
// / =), fields (.Labels.x, $labels.x), literals, parentheses and | pipes.
// parse() rejects what Go's parser rejects (unknown functions, undefined
// variables, unbalanced blocks, bad tokens), knowing every function of
// Prometheus 2.42's template engine; expand() implements humanize,
// humanize1024, humanizeDuration, humanizePercentage, humanizeTimestamp,
// printf, print, println, toUpper, toLower, title, stripPort, eq, ne, lt, le,
// gt, ge, and, or, not, len and index, and fails on the others (query,
// reReplaceAll, ...) with an error naming the function.
//
// A Template is immutable after parse(): expand() may run from many threads.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "metrics/rules/go_format.hpp"

namespace metrics::rules {

class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a template sees: Prometheus's tmplData (.Labels, .ExternalLabels,
// .ExternalURL, .Value).
struct TemplateData {
  GoMap labels;
  GoMap external_labels;
  std::string external_url;
  double value = 0;
};

class Template {
 public:
  // Throws TemplateError "template: <name>:<line>: <reason>".
  [[nodiscard]] static Template parse(std::string_view text, std::string name);
  // Throws TemplateError on an execution error.
  [[nodiscard]] std::string expand(const TemplateData& data) const;
  // Prometheus's rendering: the expansion, or "<error expanding template: ...>".
  [[nodiscard]] std::string expand_or_error(const TemplateData& data) const;

  struct Tree;

 private:
  explicit Template(std::shared_ptr<const Tree> tree) : tree_(std::move(tree)) {}
  std::shared_ptr<const Tree> tree_;
};

// Prometheus's humanize functions (convertToFloat done by the caller).
[[nodiscard]] std::string humanize(double v);
[[nodiscard]] std::string humanize1024(double v);
[[nodiscard]] std::string humanize_duration(double v);
[[nodiscard]] std::string humanize_percentage(double v);

}  // namespace metrics::rules
