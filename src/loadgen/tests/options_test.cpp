#include "metrics/loadgen/options.hpp"

#include <gtest/gtest.h>

namespace metrics::loadgen {
namespace {

TEST(Options, Defaults) {
  const auto p = parse_options({});
  EXPECT_EQ(p.options.port, 8080);
  EXPECT_EQ(p.options.agents, 200u);
  EXPECT_EQ(p.options.workload.batch_size, 29u);
  EXPECT_EQ(p.options.workload.mode, Mode::batch);
  EXPECT_TRUE(p.options.verify);
  EXPECT_TRUE(p.options.honour_retry_after);
  EXPECT_FALSE(p.options.workload.run_id.empty());
  EXPECT_TRUE(valid_run_id(p.options.workload.run_id));
}

TEST(Options, Flags) {
  const auto p = parse_options({"--address",
                                "localhost:9090",
                                "--agents",
                                "10000",
                                "--duration",
                                "1m",
                                "--requests",
                                "500",
                                "--batch-size",
                                "5",
                                "--gzip",
                                "--mode",
                                "text",
                                "--rate",
                                "2.5",
                                "-k",
                                "secret",
                                "--run-id",
                                "r1_",
                                "--no-verify",
                                "--server-pid",
                                "123",
                                "--json",
                                "--connect-timeout",
                                "500ms",
                                "--threads",
                                "2"});
  const Options& o = p.options;
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.host_header, "localhost:9090");
  EXPECT_EQ(o.port, 9090);
  EXPECT_EQ(o.agents, 10000u);
  EXPECT_EQ(o.duration, std::chrono::minutes{1});
  EXPECT_EQ(o.requests, 500u);
  EXPECT_EQ(o.workload.batch_size, 5u);
  EXPECT_TRUE(o.gzip);
  EXPECT_EQ(o.workload.mode, Mode::text);
  EXPECT_DOUBLE_EQ(o.rate, 2.5);
  EXPECT_EQ(o.key, "secret");
  EXPECT_EQ(o.workload.run_id, "r1_");
  EXPECT_FALSE(o.verify);
  EXPECT_EQ(o.server_pid, 123);
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.connect_timeout, std::chrono::milliseconds{500});
  EXPECT_EQ(o.threads, 2u);
}

TEST(Options, RetryAfterCanBeIgnored) {
  EXPECT_FALSE(parse_options({"--no-retry-after"}).options.honour_retry_after);
  EXPECT_TRUE(parse_options({"--retry-after"}).options.honour_retry_after);
}

TEST(Options, EmptyRunIdIsAllowed) {
  EXPECT_EQ(parse_options({"--run-id", ""}).options.workload.run_id, "");
}

TEST(Options, RejectsWhatWouldMisbehave) {
  EXPECT_THROW((void)parse_options({"--address", "10.0.0.1:80"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--address", "example.com:80"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--address", "127.0.0.1"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--address", "127.0.0.1:0"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--agents", "0"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--duration", "forever"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--duration", "0"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--mode", "grpc"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--run-id", "a/b"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--threads", "3"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--rate", "-1"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--unknown"}), OptionsError);
}

TEST(Options, Help) {
  EXPECT_TRUE(parse_options({"--help"}).help_requested);
}

}  // namespace
}  // namespace metrics::loadgen
