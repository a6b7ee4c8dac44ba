#include "metrics/rules/template.hpp"

#include <gtest/gtest.h>

namespace {

using metrics::rules::Template;
using metrics::rules::TemplateData;
using metrics::rules::TemplateError;

std::string run(const std::string& text, const TemplateData& data) {
  return Template::parse(text, "__alert_T").expand(data);
}

TemplateData sample() {
  return {.labels = {{"instance", "a:9100"}, {"job", "node"}},
          .external_labels = {{"cluster", "c1"}},
          .external_url = "http://example:9090",
          .value = 2.5e9};
}

TEST(Template, VariablesFieldsAndFunctions) {
  const auto d = sample();
  EXPECT_EQ(run("{{ $labels.instance }} {{ $value }} {{ $externalLabels.cluster }}", d),
            "a:9100 2.5e+09 c1");
  EXPECT_EQ(run("{{ .Labels.job }} {{ .Value | humanize }} {{ humanize1024 .Value }}", d),
            "node 2.5G 2.328Gi");
  EXPECT_EQ(run("{{ printf \"%.1f\" $value }}|{{ $value | printf \"%d\" }}", d),
            "2500000000.0|%!d(float64=2.5e+09)");
  EXPECT_EQ(run("{{ $labels.missing }}|", d), "|");
  EXPECT_EQ(run("{{ stripPort $labels.instance }} {{ toUpper $labels.job }}", d), "a NODE");
  EXPECT_EQ(run("{{ humanize \"1500\" }}", d), "1.5k");
}

TEST(Template, ControlStructuresAndTrim) {
  const auto d = sample();
  EXPECT_EQ(run("a  {{- if gt $value 1e9 }} big {{- else }} small{{ end -}}  b", d), "a bigb");
  EXPECT_EQ(run("{{ if eq $labels.job \"x\" }}x{{ else if eq $labels.job \"node\" }}n{{ end }}", d),
            "n");
  EXPECT_EQ(run("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", d),
            "instance=a:9100;job=node;");
  EXPECT_EQ(
      run("{{ with $labels.job }}[{{ . }}]{{ end }}{{ with $labels.none }}x{{ else }}-{{ end }}",
          d),
      "[node]-");
  EXPECT_EQ(run("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}{{/* c */}}", d), "12");
}

TEST(Template, ParseErrorsNameTheTemplateAndLine) {
  EXPECT_THROW((void)Template::parse("{{ nope }}", "t"), TemplateError);
  EXPECT_THROW((void)Template::parse("{{ $nope }}", "t"), TemplateError);
  EXPECT_THROW((void)Template::parse("{{ if 1 }}", "t"), TemplateError);
  EXPECT_THROW((void)Template::parse("{{ end }}", "t"), TemplateError);
  EXPECT_THROW((void)Template::parse("{{ 1 | 2 }}", "t"), TemplateError);
  try {
    (void)Template::parse("line1\n{{ humanise $value }}", "__alert_X");
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_STREQ(e.what(), "template: __alert_X:2: function \"humanise\" not defined");
  }
}

TEST(Template, ExecutionErrorsAreRenderedLikePrometheus) {
  const auto t = Template::parse("{{ query \"up\" }}", "__alert_T");
  EXPECT_EQ(t.expand_or_error(sample()).rfind("<error expanding template: ", 0), 0u);
  EXPECT_THROW((void)Template::parse("{{ humanize }}", "t").expand(sample()), TemplateError);
}

}  // namespace
