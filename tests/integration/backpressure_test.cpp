// Backpressure at the HTTP level: when the storage cannot keep up, writes are
// refused at once with 503 and Retry-After instead of queueing without bound,
// a refused write stores nothing, and reads keep being answered while writes
// wait. The storage here is a gate in front of MemoryRepository with the same
// contract as the real storages' bounded queues (core::Overloaded when full;
// those queues are tested in the storage tests).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "metrics/core/errors.hpp"
#include "test_support.hpp"

namespace metrics::testing {
namespace {

using namespace std::chrono_literals;

// Holds every apply until open() (reads pass straight through), and refuses
// with core::Overloaded once `capacity` applies are waiting.
class GatedRepository final : public storage::Repository {
 public:
  explicit GatedRepository(std::size_t capacity) : capacity_(capacity) {}
  ~GatedRepository() override { open(); }

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             storage::Callback<storage::Applied> done) override {
    bool refuse = false;
    {
      std::lock_guard lock(mu_);
      if (!opened_) {
        if (waiting_.size() < capacity_) {
          waiting_.push_back(Pending{std::move(batch), received_ms, std::move(done)});
          cv_.notify_all();
          return;
        }
        ++refused_;
        refuse = true;
      }
    }
    if (refuse) {
      done(std::make_exception_ptr(core::Overloaded("test storage queue is full")), {});
      return;
    }
    inner_.apply(std::move(batch), received_ms, std::move(done));
  }
  void get(core::SeriesKey key, storage::Callback<std::optional<core::Point>> done) override {
    inner_.get(std::move(key), std::move(done));
  }
  void list(storage::Callback<std::vector<core::Point>> done) override {
    inner_.list(std::move(done));
  }
  void get_classic(core::MetricKey key,
                   storage::Callback<std::optional<core::Point>> done) override {
    inner_.get_classic(std::move(key), std::move(done));
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

  // Lets the waiting applies through, in order, and every later one.
  void open() {
    std::deque<Pending> waiting;
    {
      std::lock_guard lock(mu_);
      opened_ = true;
      waiting.swap(waiting_);
    }
    for (auto& p : waiting)
      inner_.apply(std::move(p.batch), p.received_ms, std::move(p.done));
  }

  bool wait_for_waiting(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return waiting_.size() >= n; });
  }
  std::size_t refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  struct Pending {
    std::vector<core::Update> batch;
    std::int64_t received_ms = 0;
    storage::Callback<storage::Applied> done;
  };
  const std::size_t capacity_;
  storage::MemoryRepository inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> waiting_;
  std::size_t refused_ = 0;
  bool opened_ = false;
};

class Backpressure : public ::testing::Test {
 protected:
  static constexpr std::size_t kCapacity = 4;
  std::shared_ptr<GatedRepository> repo_ = std::make_shared<GatedRepository>(kCapacity);
  TestServer server_{TestServer::default_config(), repo_};
};

TEST_F(Backpressure, FullStorageQueueIs503WithRetryAfterAndStoresNothing) {
  // Fill the storage's queue with writes that wait, each on its own connection.
  std::vector<std::future<Response>> stalled;
  for (std::size_t i = 0; i < kCapacity; ++i) {
    stalled.push_back(std::async(std::launch::async, [this] {
      Client c(server_.port());
      return c.post("/update/counter/stalled/1");
    }));
  }
  ASSERT_TRUE(repo_->wait_for_waiting(kCapacity));

  // One more write, text and JSON: refused at once, saying when to come back.
  Client client(server_.port());
  const auto text = client.post("/update/counter/refused/5");
  EXPECT_EQ(text.result_int(), 503);
  EXPECT_EQ(text[http::field::retry_after], "1");
  EXPECT_FALSE(text.body().empty());
  const auto json = client.post_json("/updates/", R"([{"id":"refused","type":"counter","delta":5},
      {"id":"refused_gauge","type":"gauge","value":2.5}])");
  EXPECT_EQ(json.result_int(), 503);
  EXPECT_EQ(json[http::field::retry_after], "1");
  EXPECT_NE(json.body().find("\"error\""), std::string::npos) << json.body();
  EXPECT_EQ(repo_->refused(), 2u);

  // Reads do not wait behind the stalled writes, on the same connection.
  EXPECT_EQ(client.get("/ping").result_int(), 200);
  EXPECT_EQ(client.get("/value/counter/refused").result_int(), 404);
  EXPECT_EQ(client.get("/value/gauge/refused_gauge").result_int(), 404);
  EXPECT_EQ(client.get("/").result_int(), 200);

  // The storage catches up: every stalled write is answered and counted once.
  repo_->open();
  for (auto& f : stalled) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f.get().result_int(), 200);
  }
  EXPECT_EQ(client.get("/value/counter/stalled").body(), std::to_string(kCapacity));
  EXPECT_EQ(client.post("/update/counter/refused/5").result_int(), 200);
  EXPECT_EQ(client.get("/value/counter/refused").body(), "5");
}

}  // namespace
}  // namespace metrics::testing
