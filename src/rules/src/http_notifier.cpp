#include "metrics/rules/http_notifier.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "json_out.hpp"
#include "metrics/outbound/client.hpp"
#include "metrics/outbound/retry.hpp"

namespace metrics::rules {

using detail::json_labels;
using detail::json_string;

std::string alertmanager_body(std::span<const NotifyAlert> alerts) {
  std::string out = "[";
  bool first = true;
  for (const auto& a : alerts) {
    if (!first) out += ',';
    first = false;
    out += "{\"labels\":";
    json_labels(out, a.labels);
    out += ",\"annotations\":";
    json_labels(out, a.annotations);
    out += ",\"startsAt\":";
    json_string(out, format_rfc3339(a.starts_at_ms));
    out += ",\"endsAt\":";
    json_string(out, format_rfc3339(a.ends_at_ms));
    out += ",\"generatorURL\":";
    json_string(out, a.generator_url);
    out += '}';
  }
  return out + "]";
}

namespace {

// The labels every alert has with the same value (Alertmanager's commonLabels).
query::LabelSet common(std::span<const NotifyAlert> alerts, bool annotations) {
  query::LabelSet out;
  if (alerts.empty()) return out;
  out = annotations ? alerts[0].annotations : alerts[0].labels;
  for (const auto& a : alerts.subspan(1)) {
    const auto& other = annotations ? a.annotations : a.labels;
    std::erase_if(out, [&](const core::Label& l) {
      for (const auto& o : other) {
        if (o.name == l.name) return o.value != l.value;
      }
      return true;
    });
  }
  return out;
}

}  // namespace

std::string webhook_body(std::span<const NotifyAlert> alerts, const std::string& external_url) {
  bool any_firing = false;
  for (const auto& a : alerts)
    any_firing = any_firing || !a.resolved;
  const std::string alertname =
      alerts.empty() ? std::string() : std::string(query::get(alerts[0].labels, "alertname"));
  const query::LabelSet group_labels{{"alertname", alertname}};
  std::string out = "{\"receiver\":\"webhook\",\"status\":";
  json_string(out, any_firing ? "firing" : "resolved");
  out += ",\"alerts\":[";
  bool first = true;
  for (const auto& a : alerts) {
    if (!first) out += ',';
    first = false;
    out += "{\"status\":";
    json_string(out, a.resolved ? "resolved" : "firing");
    out += ",\"labels\":";
    json_labels(out, a.labels);
    out += ",\"annotations\":";
    json_labels(out, a.annotations);
    out += ",\"startsAt\":";
    json_string(out, format_rfc3339(a.starts_at_ms));
    out += ",\"endsAt\":";
    // Alertmanager shows no end for an alert that is still firing.
    json_string(out, a.resolved ? format_rfc3339(a.ends_at_ms) : "0001-01-01T00:00:00Z");
    out += ",\"generatorURL\":";
    json_string(out, a.generator_url);
    out += ",\"fingerprint\":";
    json_string(out, fingerprint(a.labels));
    out += '}';
  }
  out += "],\"groupLabels\":";
  json_labels(out, group_labels);
  out += ",\"commonLabels\":";
  json_labels(out, common(alerts, false));
  out += ",\"commonAnnotations\":";
  json_labels(out, common(alerts, true));
  out += ",\"externalURL\":";
  json_string(out, external_url);
  out += ",\"version\":\"4\",\"groupKey\":";
  json_string(out, "{}:{alertname=" + go_quote(alertname) + "}");
  out += ",\"truncatedAlerts\":0}";
  return out;
}

struct HttpNotifier::Target {
  Target(std::string u, const HttpNotifierOptions& o)
      : url(std::move(u)), options(o), thread([this] { run(); }) {}
  ~Target() { stop(); }

  void stop() {
    {
      std::lock_guard lock(mu);
      stopping = true;
      cv.notify_all();
    }
    if (thread.joinable()) thread.join();
  }

  void push(std::string body) {
    std::lock_guard lock(mu);
    if (queue.size() >= options.queue_capacity) {
      queue.pop_front();
      dropped.fetch_add(1, std::memory_order_relaxed);
    }
    queue.push_back(std::move(body));
    cv.notify_all();
  }

  bool wait(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [&] { return stopping; });
  }

  void run() {
    outbound::ClientOptions client_options;
    client_options.timeout = options.timeout;
    outbound::Client client(client_options);
    while (true) {
      std::string body;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        body = std::move(queue.front());
        queue.pop_front();
      }
      const outbound::Request request{
          .url = url, .headers = {"Content-Type: application/json"}, .body = body, .sign_key = {}};
      bool done = false;
      for (std::size_t attempt = 0; !done; ++attempt) {
        const outbound::Response r = client.perform(request);
        if (r.transport == outbound::Transport::answered && r.status >= 200 && r.status < 300) {
          sent.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        // Retry 5xx, 429 and connection trouble; other answers are final.
        const bool retry = r.transport != outbound::Transport::answered || r.status >= 500 ||
                           r.status == 429 || r.status == 408;
        const auto delay = outbound::retry_delay(options.retry_schedule, attempt,
                                                 r.status == 429 || r.status == 503
                                                     ? outbound::parse_retry_after(r.retry_after)
                                                     : std::nullopt);
        if (!retry || !delay || !wait(*delay)) {
          failed.fetch_add(1, std::memory_order_relaxed);
          done = true;
        }
      }
    }
  }

  std::string url;
  const HttpNotifierOptions& options;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool stopping = false;
  std::atomic<std::uint64_t> sent{0}, failed{0}, dropped{0};
  bool alertmanager = false;
  std::thread thread;
};

HttpNotifier::HttpNotifier(HttpNotifierOptions options) : options_(std::move(options)) {
  for (const auto& base : options_.alertmanager_urls) {
    std::string url = base;
    while (!url.empty() && url.back() == '/')
      url.pop_back();
    targets_.push_back(std::make_unique<Target>(url + "/api/v2/alerts", options_));
    targets_.back()->alertmanager = true;
  }
  for (const auto& url : options_.webhook_urls)
    targets_.push_back(std::make_unique<Target>(url, options_));
}

HttpNotifier::~HttpNotifier() {
  stop();
}

void HttpNotifier::stop() {
  for (auto& t : targets_)
    t->stop();
}

void HttpNotifier::notify(std::span<const NotifyAlert> alerts) noexcept {
  if (alerts.empty()) return;
  try {
    std::vector<std::string> am_bodies;
    for (std::size_t i = 0; i < alerts.size(); i += 64)
      am_bodies.push_back(
          alertmanager_body(alerts.subspan(i, std::min<std::size_t>(64, alerts.size() - i))));
    const std::string hook = webhook_body(alerts, options_.external_url);
    for (auto& t : targets_) {
      if (t->alertmanager) {
        for (const auto& b : am_bodies)
          t->push(b);
      } else {
        t->push(hook);
      }
    }
  } catch (const std::exception&) {
    // Out of memory while building a body: the alerts are resent later.
  }
}

NotifierStats HttpNotifier::stats() const noexcept {
  NotifierStats s;
  for (const auto& t : targets_) {
    s.sent += t->sent.load(std::memory_order_relaxed);
    s.failed += t->failed.load(std::memory_order_relaxed);
    s.dropped += t->dropped.load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace metrics::rules
