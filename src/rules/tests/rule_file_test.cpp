#include "metrics/rules/rule_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace {

namespace fs = std::filesystem;
using metrics::rules::RuleFileError;
using metrics::rules::RuleKind;

TEST(RuleFile, CorpusGoodFilesLoad) {
  for (const auto& e : fs::directory_iterator(fs::path(RULES_CORPUS_DIR) / "good")) {
    EXPECT_NO_THROW((void)metrics::rules::load_rule_file(e.path().string())) << e.path();
  }
}

TEST(RuleFile, CorpusBadFilesAreRefusedWithFileAndLine) {
  for (const auto& e : fs::directory_iterator(fs::path(RULES_CORPUS_DIR) / "bad")) {
    try {
      (void)metrics::rules::load_rule_file(e.path().string());
      ADD_FAILURE() << e.path() << " was accepted";
    } catch (const RuleFileError& err) {
      EXPECT_EQ(err.file(), e.path().string());
      EXPECT_GT(err.line(), 0) << err.what();
      EXPECT_EQ(std::string(err.what()).rfind(e.path().string() + ":", 0), 0u) << err.what();
    }
  }
}

TEST(RuleFile, ParsesGroupsAndRules) {
  const auto groups =
      metrics::rules::load_rule_file(std::string(RULES_CORPUS_DIR) + "/good/basic.yml");
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].name, "agents");
  EXPECT_EQ(groups[0].interval, std::chrono::seconds{30});
  ASSERT_EQ(groups[0].rules.size(), 2u);
  const auto& a = groups[0].rules[0];
  EXPECT_EQ(a.kind, RuleKind::alerting);
  EXPECT_EQ(a.name, "AgentDown");
  EXPECT_EQ(a.for_duration, std::chrono::minutes{1});
  EXPECT_EQ(a.keep_firing_for, std::chrono::minutes{5});
  EXPECT_EQ(a.labels.at("severity"), "page");
  EXPECT_EQ(a.line, 5);
  EXPECT_EQ(groups[0].rules[1].kind, RuleKind::recording);
}

TEST(RuleFile, ErrorsNameTheLineAndReason) {
  try {
    (void)metrics::rules::parse_rule_file(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n", "f.yml");
    FAIL();
  } catch (const RuleFileError& e) {
    EXPECT_EQ(e.line(), 5);
    EXPECT_NE(std::string(e.what()).find("could not parse expression"), std::string::npos)
        << e.what();
  }
  try {
    (void)metrics::rules::parse_rule_file("groups:\n  - name: g\n    bogus: 1\n", "f.yml");
    FAIL();
  } catch (const RuleFileError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("field bogus not found"), std::string::npos) << e.what();
  }
}

TEST(RuleFile, Durations) {
  using metrics::rules::format_prometheus_duration;
  using metrics::rules::parse_prometheus_duration;
  EXPECT_EQ(parse_prometheus_duration("1h30m"), std::chrono::minutes{90});
  EXPECT_EQ(parse_prometheus_duration("5ms"), std::chrono::milliseconds{5});
  EXPECT_EQ(parse_prometheus_duration("1m5ms"), std::chrono::milliseconds{60005});
  EXPECT_EQ(parse_prometheus_duration("0"), std::chrono::milliseconds{0});
  EXPECT_FALSE(parse_prometheus_duration("5"));
  EXPECT_FALSE(parse_prometheus_duration("1m1h"));
  EXPECT_FALSE(parse_prometheus_duration("1.5h"));
  EXPECT_FALSE(parse_prometheus_duration(""));
  EXPECT_EQ(format_prometheus_duration(std::chrono::minutes{90}), "1h30m");
  EXPECT_EQ(format_prometheus_duration(std::chrono::days{14}), "2w");
  EXPECT_EQ(format_prometheus_duration(std::chrono::milliseconds{0}), "0s");
}

TEST(RuleFile, GlobsExpandSortedAndMissingPlainPathsFail) {
  const std::vector<std::string> patterns{std::string(RULES_CORPUS_DIR) + "/good/*.yml"};
  const auto paths = metrics::rules::expand_rule_paths(patterns);
  EXPECT_GE(paths.size(), 5u);
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  const std::vector<std::string> none{std::string(RULES_CORPUS_DIR) + "/nothing-*.yml"};
  EXPECT_TRUE(metrics::rules::load_rule_files(none).empty());
  const std::vector<std::string> missing{std::string(RULES_CORPUS_DIR) + "/missing.yml"};
  EXPECT_THROW((void)metrics::rules::load_rule_files(missing), RuleFileError);
}

}  // namespace
