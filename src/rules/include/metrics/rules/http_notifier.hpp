// Sends alerts to Alertmanager (--alertmanager-url: POST <base>/api/v2/alerts,
// at most 64 alerts a request) and to plain webhooks (--alert-webhook: the
// payload Alertmanager's webhook receiver sends, "version": "4", one per
// rule evaluation that has something to send), through the one outbound
// client. Each target has its own thread and a bounded queue: notify()
// never blocks evaluation; when a queue is full the oldest request is
// dropped (counted). 5xx, 429 and connection errors are retried with
// backoff; other 4xx are not.
//
//   auto n = std::make_shared<rules::HttpNotifier>(rules::HttpNotifierOptions{
//       .alertmanager_urls = {"http://am:9093"}, .webhook_urls = {"http://hook/x"}});
//   manager.add_notifier(n);
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/rules/manager.hpp"

namespace metrics::rules {

struct HttpNotifierOptions {
  std::vector<std::string> alertmanager_urls{};
  std::vector<std::string> webhook_urls{};
  std::string external_url{};         // the webhook payload's externalURL
  std::size_t queue_capacity = 1000;  // requests per target
  std::chrono::milliseconds timeout{10'000};
  std::vector<std::chrono::milliseconds> retry_schedule{
      std::chrono::milliseconds{500}, std::chrono::seconds{1}, std::chrono::seconds{2},
      std::chrono::seconds{4}, std::chrono::seconds{8}};
};

struct NotifierStats {
  std::uint64_t sent = 0;     // requests acknowledged
  std::uint64_t failed = 0;   // requests given up after their retries
  std::uint64_t dropped = 0;  // requests dropped from a full queue
};

// Alertmanager's /api/v2/alerts body for up to 64 alerts.
[[nodiscard]] std::string alertmanager_body(std::span<const NotifyAlert> alerts);
// Alertmanager's webhook payload (version 4) for one rule's alerts.
[[nodiscard]] std::string webhook_body(std::span<const NotifyAlert> alerts,
                                       const std::string& external_url);

class HttpNotifier final : public Notifier {
 public:
  explicit HttpNotifier(HttpNotifierOptions options);
  ~HttpNotifier() override;
  HttpNotifier(const HttpNotifier&) = delete;
  HttpNotifier& operator=(const HttpNotifier&) = delete;

  void notify(std::span<const NotifyAlert> alerts) noexcept override;
  [[nodiscard]] NotifierStats stats() const noexcept;
  // Stops the threads (what is queued is abandoned).
  void stop();

  struct Target;

 private:
  HttpNotifierOptions options_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace metrics::rules
