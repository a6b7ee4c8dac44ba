// The web config parser and WebAuth: bcrypt through libxcrypt, the
// credentials cache, the failure throttle's bounded table, and that a
// throttled attempt waits on a timer, not on the I/O thread.
#include "metrics/server/web_auth.hpp"

#include <crypt.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "metrics/core/authorization.hpp"
#include "metrics/core/clock.hpp"
#include "metrics/server/config.hpp"

// GCC 12: Asio's coroutine frames look like mismatched new/delete (a false
// positive, GCC bug 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace metrics::server {
namespace {
namespace asio = boost::asio;
using std::chrono::milliseconds;

// A bcrypt hash of `password` made by libxcrypt (cost 4: fast tests).
std::string make_hash(const std::string& password, const char* prefix = "$2b$") {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn(prefix, 4, nullptr, 0, salt, sizeof salt), nullptr);
  crypt_data data{};
  const char* out = crypt_rn(password.c_str(), salt, &data, sizeof data);
  EXPECT_NE(out, nullptr);
  return out;
}

std::string basic(const std::string& user, const std::string& password) {
  return core::authorization_value(user + ":" + password, "");
}

AuthVerdict check(WebAuth& auth, const std::string& header, const std::string& peer = "10.0.0.1") {
  // Kept to the end of the process: the checker's pool thread may still be
  // inside its post() of the verdict when run() returns.
  thread_local asio::io_context ioc;
  ioc.restart();
  auto f = asio::co_spawn(ioc, auth.authenticate(header, peer), asio::use_future);
  ioc.run();
  return f.get();
}

WebConfig users_config() {
  return parse_web_config("basic_auth_users:\n  alice: " + make_hash("alice-pw") +
                              "\n  bob: " + make_hash("bob-pw", "$2y$") + "\n",
                          "web.yml");
}

TEST(WebConfigTest, ReadsPrometheusKeys) {
  const auto cfg = parse_web_config(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: /etc/server.key\n"
      "  client_auth_type: NoClientCert\n  min_version: TLS13\n  cipher_suites: "
      "[TLS_AES_128_GCM_SHA256]\n"
      "http_server_config:\n  http2: false\n"
      "basic_auth_users:\n  carol: " +
          make_hash("x", "$2y$") + "\n",
      "/etc/metrics/web.yml");
  EXPECT_EQ(cfg.tls.cert_file, "/etc/metrics/server.crt");  // relative to the file
  EXPECT_EQ(cfg.tls.key_file, "/etc/server.key");
  EXPECT_EQ(cfg.tls.min_version, "TLS13");
  ASSERT_EQ(cfg.users.size(), 1u);
  EXPECT_EQ(cfg.users[0].first, "carol");
  EXPECT_TRUE(cfg.requires_auth());
  EXPECT_EQ(cfg.not_applied.size(), 2u);  // cipher_suites, http2
}

TEST(WebConfigTest, EmptyFileRequiresNothing) {
  EXPECT_FALSE(parse_web_config("", "web.yml").requires_auth());
  EXPECT_FALSE(parse_web_config("basic_auth_users: {}\n", "web.yml").requires_auth());
}

TEST(WebConfigTest, RefusesWhatPromtoolRefuses) {
  const auto refused = [](const std::string& yaml, const std::string& reason) {
    try {
      (void)parse_web_config(yaml, "/tmp/w.yml");
      ADD_FAILURE() << "accepted: " << yaml;
    } catch (const WebConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("/tmp/w.yml: "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  };
  refused("bearer_auth_tokens: [abcdefghijklmnopq]\n", "unknown key \"bearer_auth_tokens\"");
  refused("basic_auth_users:\n  a: notahash\n", "not a bcrypt hash");
  refused("basic_auth_users:\n  a: " + make_hash("x") + "\n  a: " + make_hash("y") + "\n",
          "set twice");
  refused("tls_server_config:\n  foo: 1\n", "unknown key \"foo\"");
  refused("tls_server_config:\n  cert_file: a.pem\n", "both cert_file and key_file");
  refused(
      "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
      "RequireAndVerifyClientCert\n",
      "not supported");
  refused("basic_auth_users: [\n", "line ");
}

TEST(WebConfigTest, TokenFile) {
  WebConfig cfg;
  unsigned char d[32];
  const std::string hashed = "hashed-token-0123456789";
  SHA256(reinterpret_cast<const unsigned char*>(hashed.data()), hashed.size(), d);
  std::string hex = "sha256:";
  for (unsigned char c : d) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  parse_web_tokens("bearer_auth_tokens:\n  - plain-token-0123456789\n  - " + hex +
                       "\nauthenticated_writes: true\n",
                   "tokens.yml", cfg);
  EXPECT_EQ(cfg.tokens.size(), 2u);
  EXPECT_TRUE(cfg.authenticated_writes);
  WebAuth auth(cfg);
  EXPECT_TRUE(check(auth, "Bearer plain-token-0123456789").ok());
  EXPECT_TRUE(check(auth, "bearer " + hashed).ok());
  EXPECT_EQ(check(auth, "Bearer plain-token-012345678").kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, "").kind, AuthVerdict::Kind::missing);
  EXPECT_EQ(auth.challenge(), R"(Bearer realm="metrics-server")");
  EXPECT_THROW(parse_web_tokens("bearer_auth_tokens: [short]\n", "t.yml", cfg), WebConfigError);
  EXPECT_THROW(parse_web_tokens("tokens: []\n", "t.yml", cfg), WebConfigError);
}

TEST(WebConfigTest, EnvironmentWinsOverFlag) {
  const auto loaded = load_server_config({"--web-config", "/flag.yml", "--web-tokens", "/t.yml"},
                                         [](const std::string& name) -> std::optional<std::string> {
                                           if (name == "WEB_CONFIG") return "/env.yml";
                                           return std::nullopt;
                                         });
  EXPECT_EQ(loaded.config.web_config, "/env.yml");
  EXPECT_EQ(loaded.config.web_tokens, "/t.yml");
}

TEST(WebAuthTest, BcryptUsersBothPrefixes) {
  WebAuth auth(users_config());
  EXPECT_TRUE(check(auth, basic("alice", "alice-pw")).ok());
  EXPECT_TRUE(check(auth, basic("bob", "bob-pw")).ok());
  EXPECT_EQ(check(auth, basic("alice", "bob-pw")).kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, "Basic !!!!").kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, "Bearer alice-pw-alice-pw").kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(auth.challenge(), R"(Basic realm="metrics-server", charset="UTF-8")");
}

TEST(WebAuthTest, UnknownUserCostsABcryptRunLikeAWrongPassword) {
  WebAuth auth(users_config());
  auto before = auth.bcrypt_runs();
  EXPECT_EQ(check(auth, basic("mallory", "alice-pw")).kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(auth.bcrypt_runs() - before, 1u);
  before = auth.bcrypt_runs();
  EXPECT_EQ(check(auth, basic("alice", "wrong")).kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(auth.bcrypt_runs() - before, 1u);
}

TEST(WebAuthTest, VerifiedCredentialsAreCachedUntilReplace) {
  WebAuth auth(users_config());
  const auto before = auth.bcrypt_runs();
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(check(auth, basic("alice", "alice-pw")).ok());
  EXPECT_EQ(auth.bcrypt_runs() - before, 1u);
  // A reload that drops alice: the cache does not let her in.
  auth.replace(parse_web_config("basic_auth_users:\n  bob: " + make_hash("new") + "\n", "w.yml"));
  EXPECT_EQ(check(auth, basic("alice", "alice-pw")).kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, basic("bob", "bob-pw")).kind, AuthVerdict::Kind::invalid);
  EXPECT_TRUE(check(auth, basic("bob", "new")).ok());
}

WebConfig token_config() {
  WebConfig cfg;
  parse_web_tokens("bearer_auth_tokens: [the-right-token-0123]\n", "t.yml", cfg);
  return cfg;
}

TEST(WebAuthTest, ThrottleTableIsBoundedAndKeepsTheWorstAddress) {
  WebAuthOptions o;
  o.throttle_slots = 64;
  o.free_failures = 3;
  o.base_delay = milliseconds{1};
  o.max_delay = milliseconds{1};
  WebAuth auth(token_config(), o);
  ASSERT_EQ(auth.throttle_capacity(), 64u);
  asio::io_context ioc;
  // One address fails often, then 5000 others fail once each.
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(ioc, auth.authenticate("Bearer wrong-token-xxxxxxx", "192.0.2.1"),
                   asio::detached);
  }
  ioc.run();
  ioc.restart();
  std::vector<std::string> peers;  // outlive the coroutines, which hold views of them
  peers.reserve(5000);
  for (int i = 0; i < 5000; ++i) {
    peers.push_back("10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) +
                    "." + std::to_string(i % 256));
    asio::co_spawn(ioc, auth.authenticate("Bearer wrong-token-xxxxxxx", peers.back()),
                   asio::detached);
  }
  ioc.run();
  EXPECT_EQ(auth.failures_total(), 5020u);
  EXPECT_LE(auth.tracked_addresses(), 64u);
  EXPECT_GT(auth.tracked_addresses(), 32u);
  // The flood of single failures did not evict the worst address.
  EXPECT_TRUE(auth.pending_delay("192.0.2.1").has_value());
  EXPECT_EQ(auth.pending_delay("203.0.113.9"), milliseconds{0});  // never failed
}

TEST(WebAuthTest, AnIpv6ClientCountsPerSlash64) {
  WebAuthOptions o;
  o.free_failures = 2;
  WebAuth auth(token_config(), o);
  for (const char* peer : {"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"})
    EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx", peer).kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(auth.tracked_addresses(), 1u);
  EXPECT_GT(auth.pending_delay("2001:db8:1:2::99").value_or(milliseconds{0}), milliseconds{0});
  EXPECT_EQ(auth.pending_delay("2001:db8:1:3::1"), milliseconds{0});
  // An IPv4-mapped address counts as its IPv4 address.
  (void)check(auth, "Bearer wrong-token-xxxxxxx", "::ffff:192.0.2.7");
  EXPECT_EQ(auth.tracked_addresses(), 2u);
}

TEST(WebAuthTest, ThrottledAttemptsWaitOnATimerNotTheThread) {
  WebAuthOptions o;
  o.free_failures = 2;
  o.base_delay = milliseconds{300};
  o.max_delay = milliseconds{300};
  o.max_wait = milliseconds{700};
  WebAuth auth(token_config(), o);
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx").kind, AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx").kind, AuthVerdict::Kind::invalid);
  // The third attempt takes the turn now; the fourth waits 300 ms for its
  // own, while a right token from another address on the same single
  // thread is answered at once.
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx").kind, AuthVerdict::Kind::invalid);
  asio::io_context ioc;
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration slow{};
  std::chrono::steady_clock::duration fast{};
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto v = co_await auth.authenticate("Bearer wrong-token-xxxxxxx", "10.0.0.1");
        EXPECT_EQ(v.kind, AuthVerdict::Kind::invalid);
        slow = std::chrono::steady_clock::now() - t0;
      },
      asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto v = co_await auth.authenticate("Bearer the-right-token-0123", "10.0.0.2");
        EXPECT_TRUE(v.ok());
        fast = std::chrono::steady_clock::now() - t0;
      },
      asio::detached);
  ioc.run();
  EXPECT_GE(slow, milliseconds{250});
  EXPECT_LT(fast, milliseconds{150});
  // Known good credentials skip the throttle, even from that address.
  EXPECT_TRUE(check(auth, "Bearer the-right-token-0123").ok());
  // Parallel attempts take turns 300 ms apart; one whose turn is further
  // off than max_wait (700 ms) is refused at once, without checking.
  asio::io_context parallel;
  int throttled = 0;
  int invalid = 0;
  for (int i = 0; i < 4; ++i) {
    asio::co_spawn(
        parallel,
        [&]() -> asio::awaitable<void> {
          auto v = co_await auth.authenticate("Bearer wrong-token-xxxxxxx", "10.0.0.1");
          if (v.kind == AuthVerdict::Kind::throttled) ++throttled;
          if (v.kind == AuthVerdict::Kind::invalid) ++invalid;
        },
        asio::detached);
  }
  parallel.run();
  EXPECT_GE(throttled, 1);
  EXPECT_GE(invalid, 2);
  EXPECT_EQ(throttled + invalid, 4);
}

// The summary of failures is written by the WebAuth's own thread when the
// interval is over, not by the next failure; without failures nothing is
// written and no timer is armed. The test moves a ManualClock.
TEST(WebAuthTest, FailureSummaryIsLoggedOnATimerWithoutFurtherFailures) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  sink->set_pattern("%v");
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("auth-summary", sink));
  struct Restore {
    std::shared_ptr<spdlog::logger> logger;
    ~Restore() { spdlog::set_default_logger(logger); }
  } restore{previous};
  const auto summaries = [&] {
    std::vector<std::string> out;
    for (auto& line : sink->last_formatted())
      if (line.starts_with("auth: ")) out.push_back(line);
    return out;
  };
  // Waits (in real time, bounded) for the reporter to reach a state.
  const auto eventually = [](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds{1});
    return done();
  };

  auto clock = std::make_shared<core::ManualClock>();
  WebAuthOptions o;
  o.log_interval = std::chrono::minutes{1};
  o.clock = clock;
  WebAuth auth(token_config(), o);

  // No failures: hours pass, no timer is armed, nothing is written.
  for (int i = 0; i < 120; ++i)
    clock->advance(std::chrono::minutes{1});
  std::this_thread::sleep_for(milliseconds{20});  // a reporter that wrongly woke would log now
  EXPECT_EQ(clock->waiters(), 0u);
  EXPECT_TRUE(summaries().empty());

  // The first failure after a quiet interval is reported at once.
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx", "192.0.2.1").kind,
            AuthVerdict::Kind::invalid);
  ASSERT_EQ(summaries().size(), 1u);
  EXPECT_NE(summaries()[0].find("auth: 1 failed authentication attempt(s)"), std::string::npos)
      << summaries()[0];

  // Two more within the minute: held back, the reporter waits for the end
  // of the minute of the last line...
  const auto reported_at = clock->steady_now();
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx", "192.0.2.1").kind,
            AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx", "192.0.2.2").kind,
            AuthVerdict::Kind::invalid);
  EXPECT_EQ(summaries().size(), 1u);
  const auto due = clock->await_waiter();
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(*due, reported_at + std::chrono::minutes{1});
  clock->advance(std::chrono::seconds{59});
  EXPECT_EQ(summaries().size(), 1u);
  // ... and writes them when it is over, with no failure arriving.
  clock->advance(std::chrono::seconds{1});
  ASSERT_TRUE(eventually([&] { return summaries().size() == 2; }));
  EXPECT_NE(summaries()[1].find("auth: 2 failed authentication attempt(s) since the last report; "
                                "2 address(es) tracked, the most from 192.0.2.1 (2 in a row)"),
            std::string::npos)
      << summaries()[1];

  // Nothing left to report: no timer, and no line however long it stays quiet.
  ASSERT_TRUE(eventually([&] { return clock->waiters() == 0; }));
  for (int i = 0; i < 10; ++i)
    clock->advance(std::chrono::minutes{1});
  std::this_thread::sleep_for(milliseconds{20});
  EXPECT_EQ(summaries().size(), 2u);

  // A failure not yet reported at shutdown is written then.
  clock->advance(std::chrono::minutes{1});
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx", "192.0.2.3").kind,
            AuthVerdict::Kind::invalid);
  EXPECT_EQ(check(auth, "Bearer wrong-token-xxxxxxx", "192.0.2.3").kind,
            AuthVerdict::Kind::invalid);
  EXPECT_EQ(summaries().size(), 3u);
  auth.shutdown();
  ASSERT_EQ(summaries().size(), 4u);
  EXPECT_NE(summaries()[3].find("auth: 1 failed authentication attempt(s)"), std::string::npos)
      << summaries()[3];
}

}  // namespace
}  // namespace metrics::server
