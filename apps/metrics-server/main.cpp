// metrics-server: wires configuration, storage and the HTTP server together.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "metrics/rules/service.hpp"
#include "metrics/server/config.hpp"
#include "metrics/server/logging.hpp"
#include "metrics/server/server.hpp"
#include "metrics/server/service.hpp"
#include "metrics/server/web_auth.hpp"
#include "metrics/storage/factory.hpp"
#include "metrics/telemetry/registry.hpp"

namespace {

// Rule output into the server's storage and history (Service::write_series_samples).
// A failure (a limit, the storage) is logged; the next evaluation writes again.
class RuleOutput final : public metrics::rules::SampleSink {
 public:
  explicit RuleOutput(metrics::server::Service& service) : service_(service) {}
  void append(std::span<const metrics::rules::OutputSample> samples) override {
    std::vector<metrics::server::Service::SeriesSample> out;
    out.reserve(samples.size());
    for (const auto& s : samples)
      out.push_back({.labels = s.labels, .t_ms = s.t_ms, .v = s.v});
    try {
      service_.write_series_samples(out);
    } catch (const std::exception& e) {
      spdlog::warn("rules: {} output samples not stored: {}", out.size(), e.what());
    }
  }

 private:
  metrics::server::Service& service_;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace metrics;
  server::ServerConfig config;
  std::vector<std::string> origins;
  try {
    auto loaded = server::load_server_config({argv + 1, argv + argc}, server::process_env());
    if (loaded.help_requested) {
      std::fputs(loaded.help.c_str(), stdout);
      return 0;
    }
    config = std::move(loaded.config);
    origins = std::move(loaded.origins);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics-server: %s\n", e.what());
    return 2;
  }

  server::init_logging(config.log_level);
  for (const auto& line : origins) {
    spdlog::info("config: {}", line);
  }
  if (auto warning = server::restore_warning(config)) spdlog::warn("{}", *warning);
  // Alerting: a bad rule file stops the start (docs/ALERTING.md). Evaluation
  // starts through alerting.start(queryable, sink) over the history.
  rules::AlertingService alerting({
      .patterns = config.rules,
      .manager = {.evaluation_interval = config.evaluation_interval,
                  .external_url = config.external_url,
                  .resend_delay = config.resend_delay,
                  .for_outage_tolerance = config.for_outage_tolerance,
                  .state_file = config.history_dir.empty() || !config.history
                                    ? std::string()
                                    : config.history_dir + "/alerts.json"},
      .notifier = {.alertmanager_urls = config.alertmanager_urls,
                   .webhook_urls = config.alert_webhooks,
                   .external_url = config.external_url},
  });
  if (!config.rules.empty()) {
    try {
      alerting.load();
    } catch (const rules::RuleFileError& e) {
      spdlog::critical("rules: {}", e.what());
      std::fprintf(stderr, "metrics-server: %s\n", e.what());
      server::shutdown_logging();
      return 2;
    }
    spdlog::info("rules: {} rules in {} groups", alerting.rule_count(), alerting.group_count());
  }
  // A bad web config stops the start, naming the file and the reason (the
  // server reads it again as it starts; SIGHUP reloads it).
  if (!config.web_config.empty() || !config.web_tokens.empty()) {
    try {
      (void)server::load_web_config(config.web_config, config.web_tokens);
    } catch (const server::WebConfigError& e) {
      spdlog::critical("web config: {}", e.what());
      std::fprintf(stderr, "metrics-server: web config %s\n", e.what());
      server::shutdown_logging();
      return 2;
    }
  }
  int status = 0;
  try {
    auto repo = storage::make_repository(config.storage);
    {
      server::Server srv(config, *repo);
      boost::asio::io_context signals_ioc;
      boost::asio::signal_set signals(signals_ioc, SIGINT, SIGTERM);
      signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (!ec) spdlog::info("signal {}: shutting down", signo);
        // Rules first: their last output still reaches the history, which
        // the server drains and flushes as it stops.
        alerting.stop();
        srv.stop();
      });
      // SIGHUP reloads the rule files, the web config and the TLS
      // certificate; a bad one keeps what is in use.
      boost::asio::signal_set hangup(signals_ioc, SIGHUP);
      std::function<void()> await_hangup = [&] {
        hangup.async_wait([&](const boost::system::error_code& ec, int) {
          if (ec) return;
          if (auto error = srv.reload_web_config()) {
            spdlog::error(
                "web config: reload failed, keeping the old users, tokens and certificate: {}",
                *error);
          }
          if (auto error = alerting.reload()) {
            spdlog::error("rules: reload failed, keeping the old rules: {}", *error);
          } else {
            spdlog::info("rules: reloaded {} rules in {} groups", alerting.rule_count(),
                         alerting.group_count());
          }
          await_hangup();
        });
      };
      await_hangup();
      // Rules evaluate over the history and write their output (recording
      // rules, ALERTS, ALERTS_FOR_STATE) back into it; /api/v1/rules and
      // /api/v1/alerts answer from the manager.
      RuleOutput rule_output(srv.service());
      struct StopAlerting {
        rules::AlertingService& alerting;
        ~StopAlerting() { alerting.stop(); }
      } stop_alerting{alerting};
      metrics::telemetry::Registration alerting_metrics;
      if (!config.rules.empty()) {
        alerting.start(srv.service().live_queryable(), &rule_output,
                       srv.service().options().telemetry);
        alerting_metrics =
            srv.service().telemetry().add_collector([&alerting](metrics::telemetry::Writer& w) {
              using metrics::telemetry::Type;
              const rules::NotifierStats n = alerting.notifier_stats();
              w.family("metrics_server_notifications_sent_total", Type::counter,
                       "Notification requests Alertmanager or a webhook acknowledged.");
              w.sample_integer({}, n.sent);
              w.family("metrics_server_notifications_failed_total", Type::counter,
                       "Notification requests given up after their retries.");
              w.sample_integer({}, n.failed);
              w.family("metrics_server_notifications_dropped_total", Type::counter,
                       "Notification requests dropped from a full queue.");
              w.sample_integer({}, n.dropped);
              w.family("metrics_server_rules_loaded", Type::gauge, "Rules in use.");
              w.sample({}, static_cast<double>(alerting.rule_count()));
            });
        server::QueryApi& api = *srv.service().options().query;
        api.set_rules_source([&alerting](const server::QueryParams& params) {
          const rules::Manager* m = alerting.manager();
          return m != nullptr ? m->rules_json(params.get("type").value_or(""))
                              : std::string(R"({"groups":[]})");
        });
        api.set_alerts_source([&alerting](const server::QueryParams&) {
          const rules::Manager* m = alerting.manager();
          return m != nullptr ? m->alerts_json() : std::string(R"({"alerts":[]})");
        });
      }
      std::thread signal_thread([&] { signals_ioc.run(); });
      spdlog::info("listening on {} (port {}), storage: {}", config.address, srv.port(),
                   storage::describe(config.storage));
      srv.run();
      boost::asio::post(signals_ioc, [&] {
        signals.cancel();
        hangup.cancel();
      });
      signal_thread.join();
      // Before the server (its history and storage) goes (and again by
      // stop_alerting if anything above threw).
      alerting.stop();
      srv.service().options().query->set_rules_source({});
      srv.service().options().query->set_alerts_source({});
    }
    repo->close();
    spdlog::info("stopped");
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    status = 1;
  }
  server::shutdown_logging();
  return status;
}
