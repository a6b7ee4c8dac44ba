// Exactly-once writes (API.md Part 2, "Exactly-once writes") over real
// sockets: replays answered with the current values, 422 for another body,
// 409 while the first request is in flight, the window and the key limit,
// keys that survive a restart of the file storage (-i 0 and interval) and
// that two servers on one PostgreSQL database share, and exact counters
// through the TCP fault proxy that swallows answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "cut_proxy.hpp"
#include "metrics/core/clock.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/storage/factory.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "process_support.hpp"

namespace metrics::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kReplayed = "Idempotent-Replayed";

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Response post_keyed(Client& c, const std::string& target, const std::string& body,
                    const std::string& key) {
  Request req{http::verb::post, target, 11};
  req.set(http::field::content_type, "application/json");
  if (!key.empty()) req.set("Idempotency-Key", key);
  req.body() = body;
  return c.send(std::move(req));
}

std::string counter_batch(const std::string& name, std::int64_t delta) {
  return R"([{"id":")" + name + R"(","type":"counter","delta":)" + std::to_string(delta) + "}]";
}

bool replayed(const Response& r) {
  return r[kReplayed] == "true";
}

struct MemoryServer {
  explicit MemoryServer(storage::KeyStoreOptions keys = {},
                        std::shared_ptr<core::ManualClock> clock = nullptr)
      : repo(std::make_shared<storage::MemoryRepository>()),
        server((repo->keys().configure(keys), TestServer::default_config()), repo,
               hooks_with(std::move(clock))) {}
  static server::ServerHooks hooks_with(std::shared_ptr<core::ManualClock> clock) {
    server::ServerHooks hooks;
    hooks.clock = std::move(clock);
    return hooks;
  }
  std::shared_ptr<storage::MemoryRepository> repo;
  TestServer server;
};

TEST(Idempotency, ReplayAnswersTheCurrentValuesAndChangesNothing) {
  MemoryServer s;
  Client c(s.server.port());
  const std::string body =
      R"([{"id":"c","type":"counter","delta":5},{"id":"g","type":"gauge","value":1.5}])";
  auto first = post_keyed(c, "/updates/", body, "k-1");
  ASSERT_EQ(first.result_int(), 200);
  EXPECT_EQ(first.body(),
            R"([{"id":"c","type":"counter","delta":5},{"id":"g","type":"gauge","value":1.5}])");
  EXPECT_EQ(first.find(kReplayed), first.end());
  // Others write in between: the replay shows the values now.
  ASSERT_EQ(c.post("/update/counter/c/10").result_int(), 200);
  ASSERT_EQ(c.post("/update/gauge/g/2.25").result_int(), 200);
  auto again = post_keyed(c, "/updates/", body, "k-1");
  ASSERT_EQ(again.result_int(), 200);
  EXPECT_TRUE(replayed(again));
  EXPECT_EQ(again.body(),
            R"([{"id":"c","type":"counter","delta":15},{"id":"g","type":"gauge","value":2.25}])");
  EXPECT_EQ(c.get("/value/counter/c").body(), "15");
  // POST /update/ too.
  const std::string one = R"({"id":"c","type":"counter","delta":1})";
  auto u1 = post_keyed(c, "/update/", one, "k-2");
  ASSERT_EQ(u1.result_int(), 200);
  EXPECT_EQ(u1.body(), R"({"id":"c","type":"counter","delta":16})");
  auto u2 = post_keyed(c, "/update/", one, "k-2");
  ASSERT_EQ(u2.result_int(), 200);
  EXPECT_TRUE(replayed(u2));
  EXPECT_EQ(u2.body(), R"({"id":"c","type":"counter","delta":16})");
  EXPECT_EQ(c.get("/value/counter/c").body(), "16");
}

// The Part 1 text endpoint honours the header too: its path is what the
// key guards (the same key with another value is 422), and a replay is the
// same empty 200 with Idempotent-Replayed.
TEST(Idempotency, TextUpdateWithAKeyIsAppliedOnce) {
  MemoryServer s;
  Client c(s.server.port());
  auto first = post_keyed(c, "/update/counter/t/4", "", "text-1");
  ASSERT_EQ(first.result_int(), 200);
  EXPECT_FALSE(replayed(first));
  auto again = post_keyed(c, "/update/counter/t/4", "", "text-1");
  ASSERT_EQ(again.result_int(), 200);
  EXPECT_TRUE(replayed(again));
  EXPECT_EQ(again.body(), "");
  EXPECT_EQ(c.get("/value/counter/t").body(), "4");
  EXPECT_EQ(post_keyed(c, "/update/counter/t/5", "", "text-1").result_int(), 422);
  EXPECT_EQ(post_keyed(c, "/update/gauge/t/4", "", "text-1").result_int(), 422);
  EXPECT_EQ(c.get("/value/counter/t").body(), "4");
  // Without a key every request counts, as in Part 1.
  ASSERT_EQ(c.post("/update/counter/t/4").result_int(), 200);
  ASSERT_EQ(c.post("/update/counter/t/4").result_int(), 200);
  EXPECT_EQ(c.get("/value/counter/t").body(), "12");
  // A key that is too long is a 400 and stores nothing.
  EXPECT_EQ(post_keyed(c, "/update/counter/t/1", "", std::string(129, 'k')).result_int(), 400);
  EXPECT_EQ(c.get("/value/counter/t").body(), "12");
}

TEST(Idempotency, SameKeyWithAnotherBodyIs422AndStoresNothing) {
  MemoryServer s;
  Client c(s.server.port());
  ASSERT_EQ(post_keyed(c, "/updates/", counter_batch("c", 1), "k").result_int(), 200);
  auto other = post_keyed(c, "/updates/", counter_batch("c", 2), "k");
  EXPECT_EQ(other.result_int(), 422);
  EXPECT_THAT(other.body(), HasSubstr("another body"));
  EXPECT_EQ(c.get("/value/counter/c").body(), "1");
  // The key is one namespace for both endpoints.
  EXPECT_EQ(post_keyed(c, "/update/", R"({"id":"c","type":"counter","delta":1})", "k").result_int(),
            422);
  EXPECT_EQ(c.get("/value/counter/c").body(), "1");
}

// The fingerprint of a body is XXH3-128 now; servers before it stored the
// SHA-256 one. A key such a server applied (restored from its log, or in a
// shared database) must still be a replay for the same body and a 422 for
// another, on both write endpoints.
TEST(Idempotency, AKeyStoredWithTheOldShaFingerprintIsStillRecognised) {
  const std::string body = counter_batch("c", 3);
  EXPECT_NE(storage::Guard::of("old", body).fingerprint,
            storage::Guard::legacy_of("old", body).fingerprint);
  EXPECT_EQ(storage::Guard::of("old", body).key, storage::Guard::legacy_of("old", body).key);
  MemoryServer s;
  const std::int64_t now = now_unix_ms();
  // What an earlier server did with this request: the write and its key.
  ASSERT_EQ(storage::apply_once_sync(*s.repo, {core::Update::counter("c", 3)}, now,
                                     storage::Guard::legacy_of("old", body))
                .outcome,
            storage::Once::applied);
  ASSERT_EQ(storage::apply_once_sync(*s.repo, {core::Update::counter("t", 4)}, now,
                                     storage::Guard::legacy_of("old-text", "/update/counter/t/4"))
                .outcome,
            storage::Once::applied);
  Client c(s.server.port());
  auto again = post_keyed(c, "/updates/", body, "old");
  ASSERT_EQ(again.result_int(), 200) << again.body();
  EXPECT_TRUE(replayed(again));
  EXPECT_EQ(again.body(), R"([{"id":"c","type":"counter","delta":3}])");
  EXPECT_EQ(post_keyed(c, "/updates/", counter_batch("c", 4), "old").result_int(), 422);
  EXPECT_EQ(c.get("/value/counter/c").body(), "3");
  EXPECT_TRUE(replayed(post_keyed(c, "/update/counter/t/4", "", "old-text")));
  EXPECT_EQ(post_keyed(c, "/update/counter/t/5", "", "old-text").result_int(), 422);
  EXPECT_EQ(c.get("/value/counter/t").body(), "4");
  // A key of this version is found by its own fingerprint, as before.
  ASSERT_EQ(post_keyed(c, "/updates/", body, "new").result_int(), 200);
  EXPECT_TRUE(replayed(post_keyed(c, "/updates/", body, "new")));
  EXPECT_EQ(c.get("/value/counter/c").body(), "6");
}

// The fingerprint is written to disk and to the database: it must not
// change between builds or machines. The expected digest is XXH3-128 of
// "abc" in its canonical (big-endian) form, as `xxh128sum` prints it.
TEST(Idempotency, TheBodyFingerprintIsXxh3OfTheBodyInCanonicalForm) {
  const auto g = storage::Guard::of("k", "abc");
  EXPECT_EQ(storage::to_hex(g.fingerprint), "06b05ab6733a618578af5f94892f3950");
  EXPECT_EQ(storage::to_hex(storage::Guard::legacy_of("k", "abc").fingerprint),
            "ba7816bf8f01cfea414140de5dae2223");  // SHA-256("abc"), cut to 16 bytes
}

TEST(Idempotency, ARejectedRequestStoresNoKey) {
  MemoryServer s;
  Client c(s.server.port());
  // A bad batch (400) and an overflow (400 from the storage) keep the key free.
  EXPECT_EQ(post_keyed(c, "/updates/", R"([{"id":"c","type":"counter"}])", "k").result_int(), 400);
  ASSERT_EQ(c.post("/update/counter/big/9223372036854775807").result_int(), 200);
  EXPECT_EQ(post_keyed(c, "/updates/", counter_batch("big", 1), "k").result_int(), 400);
  auto ok = post_keyed(c, "/updates/", counter_batch("c", 3), "k");
  ASSERT_EQ(ok.result_int(), 200);
  EXPECT_FALSE(replayed(ok));
  EXPECT_EQ(c.get("/value/counter/c").body(), "3");
}

TEST(Idempotency, EnvelopeKeyIsSignedAndMustAgreeWithTheHeader) {
  auto config = TestServer::default_config();
  config.key = "secret";
  TestServer server(config);
  Client c(server.port());
  const std::string body =
      R"({"idempotency_key":"env-1","labels":{"job":"j"},"metrics":[{"id":"c","type":"counter","delta":4}]})";
  const auto signed_post = [&](const std::string& b, const std::string& header_key) {
    Request req{http::verb::post, "/updates/", 11};
    req.set(http::field::content_type, "application/json");
    req.set("HashSHA256", core::hmac_sha256_hex("secret", b));
    if (!header_key.empty()) req.set("Idempotency-Key", header_key);
    req.body() = b;
    return c.send(std::move(req));
  };
  auto first = signed_post(body, "");
  ASSERT_EQ(first.result_int(), 200);
  EXPECT_FALSE(replayed(first));
  auto again = signed_post(body, "env-1");  // the same key in both places
  ASSERT_EQ(again.result_int(), 200);
  EXPECT_TRUE(replayed(again));
  EXPECT_EQ(c.get("/value/counter/c").body(), "4");
  // Two different keys, or a key that is too long: 400, nothing stored.
  EXPECT_EQ(signed_post(body, "env-2").result_int(), 400);
  EXPECT_EQ(signed_post(R"({"idempotency_key":")" + std::string(129, 'x') +
                            R"(","metrics":[{"id":"c","type":"counter","delta":4}]})",
                        "")
                .result_int(),
            400);
  EXPECT_EQ(signed_post(R"({"idempotency_key":"","metrics":[]})", "").result_int(), 400);
  // A tampered envelope (its key changed, the signature not) is a 401.
  std::string tampered = body;
  tampered.replace(tampered.find("env-1"), 5, "env-9");
  Request req{http::verb::post, "/updates/", 11};
  req.set(http::field::content_type, "application/json");
  req.set("HashSHA256", core::hmac_sha256_hex("secret", body));
  req.body() = tampered;
  EXPECT_EQ(c.send(std::move(req)).result_int(), 401);
  EXPECT_EQ(c.get("/value/counter/c").body(), "4");
}

TEST(Idempotency, AKeyOutsideTheWindowIsANewWrite) {
  auto clock = std::make_shared<core::ManualClock>();
  MemoryServer s({.window = std::chrono::minutes{10}, .max_keys = 1000}, clock);
  Client c(s.server.port());
  ASSERT_EQ(post_keyed(c, "/updates/", counter_batch("c", 1), "k").result_int(), 200);
  clock->advance(std::chrono::minutes{9});
  EXPECT_TRUE(replayed(post_keyed(c, "/updates/", counter_batch("c", 1), "k")));
  EXPECT_EQ(c.get("/value/counter/c").body(), "1");
  clock->advance(std::chrono::minutes{2});  // 11 minutes after the write
  auto late = post_keyed(c, "/updates/", counter_batch("c", 1), "k");
  ASSERT_EQ(late.result_int(), 200);
  EXPECT_FALSE(replayed(late));
  EXPECT_EQ(c.get("/value/counter/c").body(), "2");
  EXPECT_THAT(c.get("/metrics").body(),
              HasSubstr("metrics_server_idempotency_evictions_total{reason=\"window\"} 1"));
}

TEST(Idempotency, PastMaxKeysTheOldestAreForgottenAndCounted) {
  MemoryServer s({.window = std::chrono::minutes{10}, .max_keys = 3});
  Client c(s.server.port());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(
        post_keyed(c, "/updates/", counter_batch("c", 1), "k" + std::to_string(i)).result_int(),
        200);
  }
  EXPECT_EQ(c.get("/value/counter/c").body(), "5");
  // k3..k5 are kept: replays.
  for (int i = 3; i <= 5; ++i) {
    EXPECT_TRUE(
        replayed(post_keyed(c, "/updates/", counter_batch("c", 1), "k" + std::to_string(i))))
        << i;
  }
  EXPECT_EQ(c.get("/value/counter/c").body(), "5");
  const auto page = c.get("/metrics").body();
  EXPECT_THAT(page, HasSubstr("metrics_server_idempotency_keys 3\n"));
  EXPECT_THAT(page, HasSubstr("metrics_server_idempotency_evictions_total{reason=\"max_keys\"} 2"));
  EXPECT_THAT(page, HasSubstr("metrics_server_idempotency_replays_total 3"));
  // k1 was evicted: it is a new write now.
  auto k1 = post_keyed(c, "/updates/", counter_batch("c", 1), "k1");
  EXPECT_FALSE(replayed(k1));
  EXPECT_EQ(c.get("/value/counter/c").body(), "6");
  EXPECT_EQ(s.repo->keys().stats().keys, 3u);
}

// A memory storage whose applies complete only when the test opens the gate
// (held, never blocking the server's thread, like a slow commit).
class GatedRepository final : public storage::Repository {
 public:
  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             storage::Callback<storage::Applied> done) override {
    {
      const std::lock_guard lock(mu_);
      if (!open_) {
        held_.push_back(Held{std::move(batch), received_ms, std::move(done)});
        cv_.notify_all();
        return;
      }
    }
    inner_.apply(std::move(batch), received_ms, std::move(done));
  }
  void get(core::SeriesKey key, storage::Callback<std::optional<core::Point>> done) override {
    inner_.get(std::move(key), std::move(done));
  }
  void get_classic(core::MetricKey key,
                   storage::Callback<std::optional<core::Point>> done) override {
    inner_.get_classic(std::move(key), std::move(done));
  }
  void list(storage::Callback<std::vector<core::Point>> done) override {
    inner_.list(std::move(done));
  }
  void list_series(storage::Callback<std::vector<core::Point>> done) override {
    inner_.list_series(std::move(done));
  }
  void expire(std::int64_t cutoff_ms,
              storage::Callback<std::vector<core::SeriesKey>> done) override {
    inner_.expire(cutoff_ms, std::move(done));
  }
  void ping(storage::Callback<bool> done) override { inner_.ping(std::move(done)); }
  void close() override { open(); }

  void wait_for_apply() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !held_.empty(); });
  }
  void open() {
    std::vector<Held> held;
    {
      const std::lock_guard lock(mu_);
      open_ = true;
      held.swap(held_);
    }
    for (auto& h : held)
      inner_.apply(std::move(h.batch), h.received_ms, std::move(h.done));
  }

 private:
  struct Held {
    std::vector<core::Update> batch;
    std::int64_t received_ms;
    storage::Callback<storage::Applied> done;
  };
  storage::MemoryRepository inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Held> held_;
  bool open_ = false;
};

TEST(Idempotency, WhileTheFirstRequestIsInFlightTheSameKeyIs409) {
  auto repo = std::make_shared<GatedRepository>();
  TestServer server(TestServer::default_config(), repo);
  auto first = std::async(std::launch::async, [&] {
    Client c(server.port());
    return post_keyed(c, "/updates/", counter_batch("c", 7), "slow");
  });
  repo->wait_for_apply();
  Client c(server.port());
  auto second = post_keyed(c, "/updates/", counter_batch("c", 7), "slow");
  EXPECT_EQ(second.result_int(), 409);
  EXPECT_THAT(second.body(), HasSubstr("still being applied"));
  repo->open();
  auto answer = first.get();
  ASSERT_EQ(answer.result_int(), 200);
  EXPECT_FALSE(replayed(answer));
  EXPECT_TRUE(replayed(post_keyed(c, "/updates/", counter_batch("c", 7), "slow")));
  EXPECT_EQ(c.get("/value/counter/c").body(), "7");
}

TEST(Idempotency, RequestsWithoutKeysAnswerAsBefore) {
  MemoryServer s;
  Client c(s.server.port());
  auto a = c.post_json("/updates/", counter_batch("c", 2));
  auto b = c.post_json("/updates/", counter_batch("c", 2));
  EXPECT_EQ(a.body(), R"([{"id":"c","type":"counter","delta":2}])");
  EXPECT_EQ(b.body(), R"([{"id":"c","type":"counter","delta":4}])");
  EXPECT_EQ(b.find(kReplayed), b.end());
  EXPECT_EQ(s.repo->keys().stats().keys, 0u);
}

// ---- Durable keys: real server processes.

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("metrics-idem-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(IdempotencyProcess, SynchronousFileStorageKeepsKeysAcrossKill9) {
  const auto dir = fresh_dir("sync");
  const std::string file = (dir / "db.json").string();
  {
    ServerProcess server({"-f", file, "-i", "0"});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(
          post_keyed(c, "/updates/", counter_batch("c", 1), "s" + std::to_string(i)).result_int(),
          200);
    }
    (void)server.stop(SIGKILL);
  }
  {
    ServerProcess again({"-f", file, "-i", "0"});
    ASSERT_TRUE(again.wait_ready());
    Client c(again.port());
    for (int i = 0; i < 20; ++i) {
      auto r = post_keyed(c, "/updates/", counter_batch("c", 1), "s" + std::to_string(i));
      ASSERT_EQ(r.result_int(), 200);
      EXPECT_TRUE(replayed(r)) << i;
    }
    EXPECT_EQ(post_keyed(c, "/updates/", counter_batch("c", 2), "s3").result_int(), 422);
    EXPECT_EQ(c.get("/value/counter/c").body(), "20");
    // Graceful stop compacts the log into the snapshot: the keys stay.
    (void)again.stop(SIGTERM);
  }
  ServerProcess third({"-f", file, "-i", "0"});
  ASSERT_TRUE(third.wait_ready());
  Client c(third.port());
  EXPECT_TRUE(replayed(post_keyed(c, "/updates/", counter_batch("c", 1), "s7")));
  EXPECT_EQ(c.get("/value/counter/c").body(), "20");
  std::filesystem::remove_all(dir);
}

TEST(IdempotencyProcess, IntervalFileStorageKeepsKeysInTheSnapshot) {
  const auto dir = fresh_dir("interval");
  const std::string file = (dir / "db.json").string();
  {
    ServerProcess server({"-f", file, "-i", "300"});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    ASSERT_EQ(post_keyed(c, "/updates/", counter_batch("c", 5), "i1").result_int(), 200);
    ASSERT_EQ(
        post_keyed(c, "/update/", R"({"id":"c","type":"counter","delta":1})", "i2").result_int(),
        200);
    EXPECT_EQ(server.stop(SIGTERM), 0);
  }
  ServerProcess again({"-f", file, "-i", "300"});
  ASSERT_TRUE(again.wait_ready());
  Client c(again.port());
  EXPECT_TRUE(replayed(post_keyed(c, "/updates/", counter_batch("c", 5), "i1")));
  EXPECT_TRUE(
      replayed(post_keyed(c, "/update/", R"({"id":"c","type":"counter","delta":1})", "i2")));
  EXPECT_EQ(c.get("/value/counter/c").body(), "6");
  std::filesystem::remove_all(dir);
}

TEST(IdempotencyProcess, TheBoundsComeFromFlagsAndTheEnvironmentWins) {
  const auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "IDEMPOTENCY_MAX_KEYS") return "2";
    return std::nullopt;
  };
  const auto loaded = server::load_server_config(
      {"--idempotency-max-keys", "5", "--idempotency-window", "90s"}, env);
  EXPECT_EQ(loaded.config.storage.idempotency.max_keys, 2u);
  EXPECT_EQ(loaded.config.storage.idempotency.window, std::chrono::seconds{90});
  EXPECT_THROW((void)server::load_server_config({"--idempotency-max-keys", "0"}, env),
               server::ConfigError);
  EXPECT_THROW((void)server::load_server_config({"--idempotency-window", "0"}, env),
               server::ConfigError);

  ServerProcess process({"--idempotency-max-keys", "2", "--idempotency-window", "1m"});
  ASSERT_TRUE(process.wait_ready());
  Client c(process.port());
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(
        post_keyed(c, "/updates/", counter_batch("c", 1), "m" + std::to_string(i)).result_int(),
        200);
  }
  const auto page = c.get("/metrics").body();
  EXPECT_THAT(page, HasSubstr("metrics_server_idempotency_max_keys 2\n"));
  EXPECT_THAT(page, HasSubstr("metrics_server_idempotency_evictions_total{reason=\"max_keys\"} 2"));
}

// Sends one keyed POST /updates/ on a raw socket and waits 200 ms for an
// answer; true when one came. Closes the connection either way.
bool send_and_lose(std::uint16_t port, const std::string& body, const std::string& key) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    ADD_FAILURE() << "cannot connect to the proxy";
    return false;
  }
  const std::string req =
      "POST /updates/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
      "application/json\r\nIdempotency-Key: " +
      key + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  pollfd p{fd, POLLIN, 0};
  const bool answered = ::poll(&p, 1, 200) > 0;
  ::close(fd);
  return answered;
}

// The fault proxy swallows every answer of the first attempt; the client
// retries with the same key until it gets one. Every delta counts once.
TEST(IdempotencyProcess, CountersAreExactAfterManyLostAnswers) {
  const auto dir = fresh_dir("proxy");
  ServerProcess server({"-f", (dir / "db.json").string(), "-i", "0"});
  ASSERT_TRUE(server.wait_ready());
  CutProxy proxy(server.port());
  constexpr int kRequests = 25;
  int replays = 0;
  for (int i = 0; i < kRequests; ++i) {
    const std::string key = "lost-" + std::to_string(i);
    const std::string body = counter_batch("c", 3);
    proxy.swallow_replies();
    EXPECT_FALSE(send_and_lose(static_cast<std::uint16_t>(proxy.port()), body, key));
    proxy.reopen();  // answers pass again
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 200) << "no answer for " << key;
      Client retry(static_cast<std::uint16_t>(proxy.port()));
      auto r = post_keyed(retry, "/updates/", body, key);
      if (r.result_int() == 409) {
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
        continue;
      }
      ASSERT_EQ(r.result_int(), 200);
      if (replayed(r)) ++replays;
      break;
    }
  }
  Client c(server.port());
  EXPECT_EQ(c.get("/value/counter/c").body(), std::to_string(3 * kRequests));
  // Each lost request reached the server and was applied: the retries were replays.
  EXPECT_EQ(replays, kRequests);
  std::filesystem::remove_all(dir);
}

// ---- PostgreSQL: two servers on one database recognise each other's keys.

std::string pg_dsn() {
  const char* dsn = std::getenv("METRICS_TEST_PG_DSN");
  return dsn != nullptr ? dsn : "";
}

TEST(IdempotencyProcess, TwoServersOnOneDatabaseShareTheKeys) {
  if (pg_dsn().empty()) {
    if (std::getenv("CI") != nullptr) FAIL() << "METRICS_TEST_PG_DSN unset in CI";
    GTEST_SKIP() << "METRICS_TEST_PG_DSN is not set";
  }
  ServerProcess a({"-d", pg_dsn()});
  ServerProcess b({"-d", pg_dsn()});
  ASSERT_TRUE(a.wait_ready());
  ASSERT_TRUE(b.wait_ready());
  Client ca(a.port());
  Client cb(b.port());
  // A name of this run only: the database is shared with other tests.
  const std::string name =
      "idem_pg_" + std::to_string(::getpid()) + "_" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::string key = name + "-key";
  auto first = post_keyed(ca, "/updates/", counter_batch(name, 11), key);
  ASSERT_EQ(first.result_int(), 200);
  EXPECT_FALSE(replayed(first));
  // The retry reaches the other replica: recognised, nothing added.
  auto retry = post_keyed(cb, "/updates/", counter_batch(name, 11), key);
  ASSERT_EQ(retry.result_int(), 200);
  EXPECT_TRUE(replayed(retry));
  EXPECT_EQ(retry.body(), R"([{"id":")" + name + R"(","type":"counter","delta":11}])");
  EXPECT_EQ(post_keyed(cb, "/updates/", counter_batch(name, 12), key).result_int(), 422);
  EXPECT_TRUE(replayed(post_keyed(ca, "/updates/", counter_batch(name, 11), key)));
  EXPECT_EQ(ca.get("/value/counter/" + name).body(), "11");
  EXPECT_EQ(cb.get("/value/counter/" + name).body(), "11");
  // A server restarted on the database still knows the key.
  (void)b.stop(SIGTERM);
  ServerProcess b2({"-d", pg_dsn()});
  ASSERT_TRUE(b2.wait_ready());
  Client cb2(b2.port());
  EXPECT_TRUE(replayed(post_keyed(cb2, "/updates/", counter_batch(name, 11), key)));
  EXPECT_EQ(cb2.get("/value/counter/" + name).body(), "11");

  // A key written by a server of an earlier version (its SHA-256 body
  // fingerprint, in the same transaction as its write): the retry that
  // reaches this version is a replay, another body a 422.
  const std::string old_key = name + "-old";
  {
    storage::StorageConfig config;
    config.database_dsn = pg_dsn();
    auto old_server = storage::make_repository(config);
    ASSERT_EQ(storage::apply_once_sync(*old_server, {core::Update::counter(name, 5)}, now_unix_ms(),
                                       storage::Guard::legacy_of(old_key, counter_batch(name, 5)))
                  .outcome,
              storage::Once::applied);
  }
  auto legacy_retry = post_keyed(ca, "/updates/", counter_batch(name, 5), old_key);
  ASSERT_EQ(legacy_retry.result_int(), 200) << legacy_retry.body();
  EXPECT_TRUE(replayed(legacy_retry));
  EXPECT_EQ(post_keyed(cb2, "/updates/", counter_batch(name, 6), old_key).result_int(), 422);
  EXPECT_EQ(ca.get("/value/counter/" + name).body(), "16");
}

}  // namespace
}  // namespace metrics::testing
