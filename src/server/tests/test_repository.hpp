// Test doubles for the server's unit tests: a fake Repository that records
// what it was asked and can fail in any way, a log capture, and a helper that
// runs one Service::handle to completion.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "metrics/core/errors.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::server::testing {

// Keeps the two tables of the Repository contract (series and classic
// values) in maps, applies batches atomically (overflow of either total
// fails the whole batch with InvalidInput) and records every call.
class FakeRepository : public storage::Repository {
 public:
  // Called at the start of every operation; may throw anything.
  std::function<void()> fail;
  std::vector<std::vector<core::Update>> applied;
  std::vector<std::int64_t> received;  // received_ms of each apply
  std::vector<core::SeriesKey> reads;
  std::vector<core::MetricKey> classic_reads;
  std::vector<std::int64_t> expiries;  // cutoff_ms of each expire
  int lists = 0;
  int series_lists = 0;
  int pings = 0;

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             storage::Callback<storage::Applied> done) override {
    if (fail) fail();
    applied.push_back(batch);
    received.push_back(received_ms);
    auto series = series_;
    auto classic = classic_;
    storage::Applied out;
    for (const auto& u : batch) {
      auto& s = series[core::SeriesKey::of(u)];
      auto& c = classic[{u.type, u.id}];
      s.id = c.id = u.id;
      s.type = c.type = u.type;
      s.labels = u.labels;
      s.timestamp_ms = received_ms;
      if (u.type == core::MetricType::counter) {
        auto st = core::checked_add(s.total, u.delta);
        auto ct = core::checked_add(c.total, u.delta);
        if (!st || !ct) {
          done(std::make_exception_ptr(core::InvalidInput("counter overflow: " + u.id)), {});
          return;
        }
        s.total = *st;
        c.total = *ct;
      } else {
        s.value = c.value = u.value;
      }
      out.series.push_back(s);
    }
    for (const auto& u : batch)
      out.classic.push_back(classic.at({u.type, u.id}));
    series_ = std::move(series);
    classic_ = std::move(classic);
    done(nullptr, std::move(out));
  }

  void get(core::SeriesKey key, storage::Callback<std::optional<core::Point>> done) override {
    if (fail) fail();
    reads.push_back(key);
    auto it = series_.find(key);
    done(nullptr, it == series_.end() ? std::nullopt : std::optional<core::Point>(it->second));
  }

  void get_classic(core::MetricKey key,
                   storage::Callback<std::optional<core::Point>> done) override {
    if (fail) fail();
    classic_reads.push_back(key);
    auto it = classic_.find(key);
    done(nullptr, it == classic_.end() ? std::nullopt : std::optional<core::Point>(it->second));
  }

  void list(storage::Callback<std::vector<core::Point>> done) override {
    if (fail) fail();
    ++lists;
    std::vector<core::Point> all;
    for (const auto& [key, p] : classic_)
      all.push_back(p);
    done(nullptr, std::move(all));
  }

  void list_series(storage::Callback<std::vector<core::Point>> done) override {
    if (fail) fail();
    ++series_lists;
    std::vector<core::Point> all;
    for (const auto& [key, p] : series_)
      all.push_back(p);
    done(nullptr, std::move(all));
  }

  void expire(std::int64_t cutoff_ms,
              storage::Callback<std::vector<core::SeriesKey>> done) override {
    if (fail) fail();
    expiries.push_back(cutoff_ms);
    std::vector<core::SeriesKey> gone;
    for (auto it = series_.begin(); it != series_.end();) {
      if (it->second.timestamp_ms < cutoff_ms) {
        gone.push_back(it->first);
        it = series_.erase(it);
      } else {
        ++it;
      }
    }
    done(nullptr, std::move(gone));
  }

  void ping(storage::Callback<bool> done) override {
    if (fail) fail();
    ++pings;
    done(nullptr, true);
  }

  void close() override {}

  // Stores a point as a series and, when unlabelled, as the classic value.
  void put(core::Point p) {
    if (p.labels.empty()) classic_[{p.type, p.id}] = p;
    series_[core::SeriesKey::of(p)] = std::move(p);
  }
  void put_classic(core::Point p) { classic_[{p.type, p.id}] = std::move(p); }
  [[nodiscard]] std::size_t size() const { return classic_.size(); }
  [[nodiscard]] std::size_t series_size() const { return series_.size(); }
  [[nodiscard]] const std::map<core::SeriesKey, core::Point>& series() const { return series_; }

 private:
  std::map<core::SeriesKey, core::Point> series_;
  std::map<core::MetricKey, core::Point> classic_;
};

// Sends the default logger's lines to a string while alive.
class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        logger_(std::make_shared<spdlog::logger>(
            "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_))) {
    logger_->set_pattern("%l %v");
    logger_->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger_);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  [[nodiscard]] std::string text() const {
    logger_->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::logger> logger_;
};

// Runs service.handle(req) to completion; fails the test when it throws.
inline Response run(Service& service, Request req) {
  // One context per test thread, kept to the end of the process: a pool
  // thread of the service (queries, password checks) may still be inside
  // its post() of the completion when run() returns.
  thread_local boost::asio::io_context ioc;
  ioc.restart();
  Response res;
  bool threw = false;
  boost::asio::co_spawn(ioc, service.handle(std::move(req)),
                        [&](std::exception_ptr err, Response r) {
                          threw = err != nullptr;
                          res = std::move(r);
                        });
  ioc.run();
  if (threw) throw std::runtime_error("Service::handle threw");
  return res;
}

inline Request make_request(boost::beast::http::verb method, std::string target,
                            std::string body = {}, std::string content_type = {}) {
  Request req{method, target, 11};
  if (!content_type.empty()) req.set(boost::beast::http::field::content_type, content_type);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

}  // namespace metrics::server::testing
