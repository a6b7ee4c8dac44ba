// Text exposition format 0.0.4: values exactly as client_golang prints
// them, name mapping, escaping, family order, parse-back of random
// expositions, no allocation per sample, and the real `promtool check
// metrics` on what the writer produces.
#include "metrics/exposition/text_format.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// Heap allocations so far (alloc_counter.cpp replaces operator new).
std::size_t allocations_so_far() noexcept;

namespace metrics::exposition {
namespace {

std::string value_text(double v) {
  std::string out;
  append_value(out, v);
  return out;
}

TEST(TextValue, PrintsAsTheGoClient) {
  // Expected strings are Go's strconv.FormatFloat(v, 'g', -1, 64) behind
  // expfmt's writeFloat special cases.
  const std::vector<std::pair<double, std::string>> cases{
      {1, "1"},
      {0, "0"},
      {-0.0, "0"},
      {-1, "-1"},
      {2, "2"},
      {100, "100"},
      {123456, "123456"},
      {999999, "999999"},
      {1e6, "1e+06"},
      {1234567, "1.234567e+06"},
      {2345696, "2.345696e+06"},
      {1e21, "1e+21"},
      {0.1, "0.1"},
      {0.1 + 0.2, "0.30000000000000004"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.5e-7, "1.5e-07"},
      {-2.5, "-2.5"},
      {123456.789, "123456.789"},
      {1606322587.123, "1.606322587123e+09"},
      {0x1p63, "9.223372036854776e+18"},
      {5e-324, "5e-324"},
      {1e100, "1e+100"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
      {-std::numeric_limits<double>::min(), "-2.2250738585072014e-308"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
      {std::bit_cast<double>(0x7ff0000000000002ULL), "NaN"},
      {HUGE_VAL, "+Inf"},
      {-HUGE_VAL, "-Inf"},
  };
  for (const auto& [v, want] : cases)
    EXPECT_EQ(value_text(v), want) << "value " << v;
}

TEST(TextValue, ShortestDigitsReadBack) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const double v = std::bit_cast<double>(rng());
    if (!std::isfinite(v)) continue;
    const std::string s = value_text(v);
    double back = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), back);
    ASSERT_EQ(ec, std::errc{}) << s;
    ASSERT_EQ(ptr, s.data() + s.size()) << s;
    ASSERT_EQ(back, v) << s;
  }
}

TEST(TextNames, MappingRules) {
  EXPECT_EQ(map_metric_name("http_requests_total"), "http_requests_total");
  EXPECT_EQ(map_metric_name("job:rate5m:sum"), "job:rate5m:sum");
  EXPECT_EQ(map_metric_name("my.metric-name"), "my_metric_name");
  EXPECT_EQ(map_metric_name("1abc"), "_1abc");
  EXPECT_EQ(map_metric_name("9"), "_9");
  EXPECT_EQ(map_metric_name("PollCount"), "PollCount");
  // One '_' per UTF-8 character; a stray byte counts alone.
  EXPECT_EQ(map_metric_name("\xc3\xa9t\xc3\xa9"), "_t_");
  EXPECT_EQ(map_metric_name("a\xe2\x82\xac"
                            "b"),
            "a_b");
  EXPECT_EQ(map_metric_name("\xf0\x9f\x98\x80x"), "_x");
  EXPECT_EQ(map_metric_name("\xff"
                            "a"),
            "_a");
  EXPECT_EQ(map_metric_name("a b"), "a_b");
  EXPECT_EQ(map_metric_name(""), "_");
  EXPECT_EQ(map_label_name("a:b"), "a_b");
  EXPECT_EQ(map_label_name("0x"), "_0x");
  EXPECT_EQ(map_label_name("job"), "job");
  EXPECT_TRUE(is_valid_metric_name(":a"));
  EXPECT_FALSE(is_valid_label_name(":a"));
  EXPECT_FALSE(is_valid_metric_name("1a"));
}

TEST(TextWriter, WritesFamiliesLabelsAndTimestamps) {
  std::string out;
  TextWriter w(out);
  ASSERT_TRUE(w.begin_family("a.b", core::MetricType::counter, "Help with \\ and\nnewline."));
  w.write_integer(core::Labels::make({{"job", "x"}, {"path", "a\\b\"c\nd"}}),
                  std::numeric_limits<std::int64_t>::min(), 1700000000123);
  w.write_integer(core::Labels{}, std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(w.begin_family("b", core::MetricType::gauge));
  const std::vector<core::LabelView> raw{
      {"__name__", "ignored"}, {"a-b", "1"}, {"empty", ""}, {"Z", "2"}};
  w.write(raw, 0.5, -1);
  w.write(core::Labels{}, std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(out,
            "# HELP a_b Help with \\\\ and\\nnewline.\n"
            "# TYPE a_b counter\n"
            "a_b{job=\"x\",path=\"a\\\\b\\\"c\\nd\"} -9223372036854775808 1700000000123\n"
            "a_b 9223372036854775807\n"
            "# TYPE b gauge\n"
            "b{a_b=\"1\",Z=\"2\"} 0.5 -1\n"
            "b NaN\n");
  EXPECT_EQ(w.dropped(), 0U);
}

TEST(TextWriter, RawLabelNamesThatMapToOneAreWrittenOnce) {
  std::string out;
  TextWriter w(out);
  ASSERT_TRUE(w.begin_family("m", core::MetricType::gauge));
  const std::vector<core::LabelView> raw{{"a-b", "1"}, {"a_b", "2"}, {"a.b", "3"}, {"c", "4"}};
  w.write(raw, 1);
  EXPECT_EQ(out, "# TYPE m gauge\nm{a_b=\"1\",c=\"4\"} 1\n");
}

TEST(TextWriter, FamiliesMustComeInIncreasingOrder) {
  std::string out;
  TextWriter w(out);
  ASSERT_TRUE(w.begin_family("b", core::MetricType::gauge));
  w.write(core::Labels{}, 1);
  EXPECT_FALSE(w.begin_family("a", core::MetricType::gauge));
  w.write(core::Labels{}, 2);
  // "b.x" maps to "b_x" > "b": fine; "b-x" then maps to the same name.
  EXPECT_TRUE(w.begin_family("b.x", core::MetricType::gauge));
  EXPECT_FALSE(w.begin_family("b-x", core::MetricType::counter));
  w.write_integer(core::Labels{}, 3);
  EXPECT_EQ(out, "# TYPE b gauge\nb 1\n# TYPE b_x gauge\n");
  EXPECT_EQ(w.dropped(), 4U);  // two families refused, two samples dropped
  // Nothing is written before the first family.
  std::string none;
  TextWriter w2(none);
  w2.write(core::Labels{}, 1);
  EXPECT_EQ(none, "");
  EXPECT_EQ(w2.dropped(), 1U);
}

TEST(TextWriter, WritingSamplesDoesNotAllocate) {
  const auto labels = core::Labels::make({{"instance", "host-with-a-long-name:8080"},
                                          {"job", "some_job_with_a_long_name"},
                                          {"path", "/a/\"quoted\"/path\n"}});
  std::string out;
  out.reserve(1 << 20);
  TextWriter w(out);
  ASSERT_TRUE(w.begin_family("a_family_name_longer_than_sso", core::MetricType::gauge));
  const std::vector<core::LabelView> raw{{"instance", "host:1"}, {"job", "j"}, {"a-b", "x"}};
  w.write(raw, 1);  // the first raw write sizes the writer's scratch once
  const std::size_t before = allocations_so_far();
  for (int i = 0; i < 1000; ++i) {
    w.write(labels, i * 1.25e-3, 1700000000000 + i);
    w.write_integer(labels, i);
    w.write(raw, -i * 1e9);
  }
  EXPECT_EQ(allocations_so_far(), before);
  EXPECT_GT(out.size(), 100000U);
}

TEST(TextPoints, SortedFamiliesOneTypeLineAndClashes) {
  std::vector<core::Point> points;
  points.push_back(core::Point::gauge("b", 1.5, core::Labels::make({{"job", "x"}})));
  points.push_back(core::Point::counter("a", 5));
  points.push_back(core::Point::gauge("a.b", 2));
  points.push_back(core::Point::gauge("a-b", 3));
  points.push_back(core::Point::gauge("a-b", 4, core::Labels::make({{"k", "v"}})));
  points.push_back(core::Point::counter("a_b", 9));
  points.push_back(core::Point::counter("c", 1));
  points.push_back(core::Point::gauge("c", 1));
  points.push_back(core::Point::gauge("b", 2.5, core::Labels::make({{"job", "w"}})));
  points.back().timestamp_ms = 42;
  std::string out;
  const TextStats stats = write_points(points, out);
  EXPECT_EQ(out,
            "# TYPE a counter\n"
            "a 5\n"
            "# TYPE a_b gauge\n"
            "a_b 3\n"
            "a_b{k=\"v\"} 4\n"
            "# TYPE b gauge\n"
            "b{job=\"w\"} 2.5\n"
            "b{job=\"x\"} 1.5\n"
            "# TYPE c gauge\n"
            "c 1\n");
  EXPECT_EQ(stats.families, 4U);
  EXPECT_EQ(stats.samples, 6U);
  EXPECT_EQ(stats.dropped, 3U);  // "a.b" (same labels as "a-b"), counter "a_b", counter "c"

  std::string with_ts;
  (void)write_points(std::span(points).subspan(8), with_ts, TextOptions{.timestamps = true});
  EXPECT_EQ(with_ts, "# TYPE b gauge\nb{job=\"w\"} 2.5 42\n");
}

// ---- parse back ----

struct Parsed {
  std::map<std::string, std::string> types;
  // name + canonical labels -> value text, timestamp
  struct Line {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    std::string value;
    std::optional<std::int64_t> ts;
  };
  std::vector<Line> lines;
};

// A strict reader of what the writer produces (the subset of 0.0.4 it uses):
// fails the test on anything it does not expect.
Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  std::string current;
  while (std::getline(in, line)) {
    if (line.starts_with("# TYPE ")) {
      const auto sp = line.find(' ', 7);
      current = line.substr(7, sp - 7);
      EXPECT_TRUE(is_valid_metric_name(current)) << line;
      EXPECT_EQ(p.types.count(current), 0U) << "second TYPE for " << current;
      p.types[current] = line.substr(sp + 1);
      continue;
    }
    if (line.starts_with("#")) continue;
    Parsed::Line l;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    l.name = line.substr(0, i);
    EXPECT_EQ(l.name, current) << "sample outside its family: " << line;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const auto eq = line.find('=', i);
        std::string name = line.substr(i, eq - i);
        EXPECT_TRUE(is_valid_label_name(name)) << line;
        EXPECT_EQ(line[eq + 1], '"');
        std::string value;
        std::size_t k = eq + 2;
        for (; line[k] != '"'; ++k) {
          if (line[k] == '\\') {
            ++k;
            value.push_back(line[k] == 'n' ? '\n' : line[k]);
            EXPECT_TRUE(line[k] == 'n' || line[k] == '\\' || line[k] == '"') << line;
          } else {
            value.push_back(line[k]);
          }
        }
        l.labels.emplace_back(std::move(name), std::move(value));
        i = k + 1;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    EXPECT_EQ(line[i], ' ') << line;
    const auto sp = line.find(' ', i + 1);
    l.value = line.substr(i + 1, sp == std::string::npos ? std::string::npos : sp - i - 1);
    if (sp != std::string::npos) {
      std::int64_t ts = 0;
      const std::string t = line.substr(sp + 1);
      const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), ts);
      EXPECT_TRUE(ec == std::errc{} && ptr == t.data() + t.size()) << line;
      l.ts = ts;
    }
    p.lines.push_back(std::move(l));
  }
  return p;
}

bool same_value(const std::string& text, double v) {
  if (std::isnan(v)) return text == "NaN";
  if (std::isinf(v)) return text == (v > 0 ? "+Inf" : "-Inf");
  double back = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), back);
  return ec == std::errc{} && ptr == text.data() + text.size() && back == v;
}

std::vector<core::Point> random_points(std::mt19937_64& rng, std::size_t n) {
  const std::vector<std::string> names{"alloc_bytes",       "PollCount", "my.metric", "1st",
                                       "\xc3\xa9t\xc3\xa9", "a:b",       "x y",       "z"};
  const std::vector<std::string> values{
      "", "plain", "with \"quotes\"", "back\\slash", "new\nline", "\xe2\x82\xac", "\\n"};
  std::vector<core::Point> points;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<core::Label> labels;
    labels.push_back({"job", values[rng() % values.size()]});
    labels.push_back({"id", std::to_string(i)});
    if (rng() % 2) labels.push_back({"Upper_9", values[rng() % values.size()]});
    const std::string& name = names[rng() % names.size()];
    // One type per name, so that nothing is dropped.
    const bool counter = name.size() % 3 == 0;
    core::Point p = counter ? core::Point::counter(name, static_cast<std::int64_t>(rng()))
                            : core::Point::gauge(name, std::bit_cast<double>(rng()));
    if (!counter && rng() % 4 == 0) {
      p.value = std::array{std::numeric_limits<double>::quiet_NaN(),
                           HUGE_VAL,
                           -HUGE_VAL,
                           0.0,
                           -0.0,
                           1e6,
                           1e-5}[rng() % 7];
    }
    p.labels = core::Labels::make(std::move(labels));
    p.timestamp_ms = static_cast<std::int64_t>(rng() >> 1) * (rng() % 2 ? 1 : -1);
    points.push_back(std::move(p));
  }
  return points;
}

TEST(TextPoints, RandomExpositionsParseBack) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 50; ++round) {
    const auto points = random_points(rng, 40);
    std::string out;
    const TextStats stats = write_points(points, out, {.timestamps = true});
    ASSERT_EQ(stats.dropped, 0U);
    const Parsed parsed = parse(out);
    ASSERT_EQ(parsed.lines.size(), points.size());
    // Every point is found by its mapped name and its id label.
    for (const core::Point& p : points) {
      const std::string name = map_metric_name(p.id);
      ASSERT_EQ(parsed.types.at(name), core::to_string(p.type));
      const auto it = std::find_if(parsed.lines.begin(), parsed.lines.end(), [&](const auto& l) {
        return l.name == name &&
               std::find(l.labels.begin(), l.labels.end(),
                         std::pair<std::string, std::string>(
                             "id", std::string(*p.labels.get("id")))) != l.labels.end();
      });
      ASSERT_NE(it, parsed.lines.end());
      std::vector<std::pair<std::string, std::string>> want;
      for (const core::LabelView l : p.labels)
        want.emplace_back(std::string(l.name), std::string(l.value));
      EXPECT_EQ(it->labels, want);
      if (p.type == core::MetricType::counter) {
        EXPECT_EQ(it->value, std::to_string(p.total));
      } else {
        EXPECT_TRUE(same_value(it->value, p.value)) << it->value << " for " << p.value;
      }
      EXPECT_EQ(it->ts, p.timestamp_ms == 0 ? std::nullopt : std::optional(p.timestamp_ms));
    }
    // Families sorted, each once.
    std::vector<std::string> order;
    for (const auto& l : parsed.lines) {
      if (order.empty() || order.back() != l.name) order.push_back(l.name);
    }
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
    EXPECT_EQ(std::adjacent_find(order.begin(), order.end()), order.end());
  }
}

// ---- promtool ----

struct ToolRun {
  int status = -1;
  std::string output;
};

ToolRun promtool_check(const std::string& text) {
  const std::string promtool = METRICS_PROMTOOL;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("exposition_promtool_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto in = dir / "metrics.txt";
  const auto log = dir / "out.txt";
  std::ofstream(in, std::ios::binary) << text;
  const std::string cmd =
      promtool + " check metrics < " + in.string() + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  ToolRun run;
  run.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream f(log);
  run.output.assign(std::istreambuf_iterator<char>(f), {});
  std::filesystem::remove_all(dir);
  return run;
}

class Promtool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(METRICS_PROMTOOL).empty()) {
      GTEST_SKIP() << "promtool not found at configure time (Debian package prometheus)";
    }
  }
};

TEST_F(Promtool, TheHarnessSeesParseErrors) {
  const ToolRun run = promtool_check("# TYPE a gauge\na 1\n# TYPE a gauge\n");
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_THAT(run.output, ::testing::HasSubstr("error while linting"));
}

TEST_F(Promtool, CleanExpositionPassesWithoutAnyProblem) {
  std::string out;
  TextWriter w(out);
  ASSERT_TRUE(w.begin_family("http_requests_total", core::MetricType::counter, "Requests."));
  w.write_integer(core::Labels::make({{"code", "200"}, {"path", "/a \"b\"\n\\"}}), 1027,
                  1700000000000);
  w.write_integer(core::Labels::make({{"code", "500"}}), 3);
  ASSERT_TRUE(w.begin_family("memory_allocated_bytes", core::MetricType::gauge, "Bytes\nin use."));
  w.write(core::Labels::make({{"instance", "h:1"}}), 1.2345678e9);
  w.write(core::Labels::make({{"instance", "h:2"}}), std::numeric_limits<double>::quiet_NaN());
  w.write(core::Labels::make({{"instance", "h:3"}}), HUGE_VAL);
  w.write(core::Labels::make({{"instance", "h:4"}}), -HUGE_VAL);
  w.write(core::Labels::make({{"instance", "h:5"}}), 5e-324);
  const ToolRun run = promtool_check(out);
  EXPECT_EQ(run.status, 0) << run.output << "\n" << out;
  EXPECT_EQ(run.output, "");
}

TEST_F(Promtool, RandomExpositionsHaveNoErrors) {
  // User-chosen names (PollCount, counters without _total) draw lint
  // warnings (exit 3); a parse error is exit 1 with "error while linting".
  std::mt19937_64 rng(5);
  for (int round = 0; round < 5; ++round) {
    std::string out;
    const TextStats stats = write_points(random_points(rng, 200), out, {.timestamps = true});
    ASSERT_EQ(stats.dropped, 0U);
    const ToolRun run = promtool_check(out);
    EXPECT_TRUE(run.status == 0 || run.status == 3) << run.status << run.output;
    EXPECT_THAT(run.output, ::testing::Not(::testing::HasSubstr("error"))) << out;
  }
}

}  // namespace
}  // namespace metrics::exposition
