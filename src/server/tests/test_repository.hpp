// Test doubles for the server's unit tests: a fake Repository that records
// what it was asked and can fail in any way, a log capture, and a helper that
// runs one Service::handle to completion.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "metrics/server/service.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::server::testing {

class FakeRepository : public storage::Repository {
 public:
  // Called at the start of every operation; may throw anything.
  std::function<void()> fail;
  std::vector<std::vector<core::Metric>> applied;
  std::vector<core::MetricKey> reads;
  int lists = 0;
  int pings = 0;

  void apply(std::vector<core::Metric> batch,
             storage::Callback<std::vector<core::Metric>> done) override {
    if (fail) fail();
    applied.push_back(batch);
    std::vector<core::Metric> stored;
    for (auto& m : batch) {
      auto& slot = data_[{m.type, m.id}];
      if (m.type == core::MetricType::counter) {
        m.delta += slot.delta;
      }
      slot = m;
      stored.push_back(m);
    }
    done(nullptr, std::move(stored));
  }

  void get(core::MetricKey key, storage::Callback<std::optional<core::Metric>> done) override {
    if (fail) fail();
    reads.push_back(key);
    auto it = data_.find({key.type, key.id});
    done(nullptr, it == data_.end() ? std::nullopt : std::optional<core::Metric>(it->second));
  }

  void list(storage::Callback<std::vector<core::Metric>> done) override {
    if (fail) fail();
    ++lists;
    std::vector<core::Metric> all;
    for (const auto& [key, m] : data_)
      all.push_back(m);
    done(nullptr, std::move(all));
  }

  void ping(storage::Callback<bool> done) override {
    if (fail) fail();
    ++pings;
    done(nullptr, true);
  }

  void close() override {}

  void put(core::Metric m) { data_[{m.type, m.id}] = std::move(m); }
  [[nodiscard]] std::size_t size() const { return data_.size(); }

 private:
  std::map<std::pair<core::MetricType, std::string>, core::Metric> data_;
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
  boost::asio::io_context ioc;
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
