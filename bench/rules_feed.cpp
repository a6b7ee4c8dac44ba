// Feeds a running metrics-server the 300,000 series of rules_scale.hpp by
// remote write (POST /api/v1/write): first a backfill of the last minutes
// with the samples' own timestamps, then (optionally) live, one sample per
// series every 15 s, spread over the interval in batches of 2,000 series (as
// 150 staggered scrapes would arrive). Also writes the 1,000-rule file.
//
//   rules_feed --rules /tmp/rules.yml                    # the rule file only
//   rules_feed --url http://127.0.0.1:9090/api/v1/write --backfill-minutes 30 --live-seconds 120
//
// Prints one JSON line per phase: samples, requests, failures, seconds.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/core/labels.hpp"
#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"
#include "metrics/outbound/client.hpp"
#include "rules_scale.hpp"

namespace {

namespace ex = metrics::exposition;
namespace rs = rules_scale;

constexpr int kInstancesPerBatch = 2;  // 2,000 series a request
constexpr int kBatches = rs::kInstances / kInstancesPerBatch;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The timestamp of step k for the series of batch b (batches staggered
// within the step).
std::int64_t time_of(std::int64_t k, int b) {
  return k * rs::kStepMs + b * (rs::kStepMs / kBatches);
}

// Batch b's series with the samples of steps [k0, k1].
std::string encode_batch(int b, std::int64_t k0, std::int64_t k1) {
  std::string body;
  std::vector<ex::Sample> samples;
  for (int i = b * kInstancesPerBatch; i < (b + 1) * kInstancesPerBatch; ++i) {
    const std::string instance = rs::instance_name(i);
    const std::string job = rs::job_of(i);
    for (int m = 0; m < rs::kGauges + rs::kCounters; ++m) {
      const bool gauge = m < rs::kGauges;
      const int idx = gauge ? m : m - rs::kGauges;
      const std::string name = gauge ? rs::gauge_name(idx) : rs::counter_name(idx);
      samples.clear();
      for (std::int64_t k = k0; k <= k1; ++k)
        samples.push_back(
            {gauge ? rs::gauge_value(i, idx, k) : rs::counter_value(i, idx, k), time_of(k, b)});
      const std::array<metrics::core::LabelView, 3> labels{
          metrics::core::LabelView{"__name__", name},
          metrics::core::LabelView{"instance", instance}, metrics::core::LabelView{"job", job}};
      ex::append_series(body, labels, samples);
    }
  }
  return ex::snappy_compress(body);
}

struct Totals {
  std::atomic<std::uint64_t> samples{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> failures{0};
};

void post(metrics::outbound::Client& client, const std::string& url, const std::string& wire,
          std::uint64_t samples, Totals& totals) {
  const metrics::outbound::Request req{
      .url = url,
      .headers = {"Content-Type: application/x-protobuf", "Content-Encoding: snappy",
                  "X-Prometheus-Remote-Write-Version: 0.1.0"},
      .body = wire,
      .sign_key = {}};
  const auto answer = client.perform(req);
  ++totals.requests;
  if (answer.transport != metrics::outbound::Transport::answered || answer.status / 100 != 2) {
    if (++totals.failures <= 3)
      std::fprintf(stderr, "rules_feed: status %ld %s %.200s\n", answer.status,
                   answer.error.c_str(), answer.body.c_str());
    return;
  }
  totals.samples += samples;
}

void report(const char* phase, const Totals& t, double seconds) {
  std::printf(
      "{\"phase\":\"%s\",\"samples\":%llu,\"requests\":%llu,\"failures\":%llu,\"seconds\":%.2f}\n",
      phase, static_cast<unsigned long long>(t.samples.load()),
      static_cast<unsigned long long>(t.requests.load()),
      static_cast<unsigned long long>(t.failures.load()), seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  std::string rules;
  std::string interval = "15s";
  int backfill_minutes = 30;
  int live_seconds = 0;
  int threads = 2;
  for (int a = 1; a < argc; ++a) {
    const std::string_view arg = argv[a];
    auto next = [&]() -> std::string {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "rules_feed: %s needs a value\n", argv[a]);
        std::exit(2);
      }
      return argv[++a];
    };
    if (arg == "--url") {
      url = next();
    } else if (arg == "--rules") {
      rules = next();
    } else if (arg == "--interval") {
      interval = next();
    } else if (arg == "--backfill-minutes") {
      backfill_minutes = std::atoi(next().c_str());
    } else if (arg == "--live-seconds") {
      live_seconds = std::atoi(next().c_str());
    } else if (arg == "--threads") {
      threads = std::max(1, std::atoi(next().c_str()));
    } else {
      std::fprintf(stderr, "rules_feed: unknown argument %s\n", argv[a]);
      return 2;
    }
  }
  if (!rules.empty()) {
    std::ofstream(rules) << rs::rule_file(interval);
  }
  if (url.empty()) return 0;

  metrics::outbound::ClientOptions client_options;
  client_options.timeout = std::chrono::seconds{60};
  const std::int64_t series_per_batch =
      static_cast<std::int64_t>(kInstancesPerBatch) * (rs::kGauges + rs::kCounters);
  std::int64_t k_end = now_ms() / rs::kStepMs - 1;
  if (backfill_minutes > 0) {
    const std::int64_t k0 = k_end - backfill_minutes * 60'000 / rs::kStepMs;
    Totals totals;
    const auto start = std::chrono::steady_clock::now();
    std::atomic<int> next_batch{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        metrics::outbound::Client client(client_options);
        for (int b = next_batch++; b < kBatches; b = next_batch++) {
          const std::string wire = encode_batch(b, k0, k_end);
          post(client, url, wire, static_cast<std::uint64_t>(series_per_batch * (k_end - k0 + 1)),
               totals);
        }
      });
    }
    for (auto& t : pool)
      t.join();
    report("backfill", totals,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (live_seconds > 0) {
    Totals totals;
    metrics::outbound::Client client(client_options);
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t stop = now_ms() + live_seconds * 1000LL;
    // Every batch of every step after the backfill, at its own time.
    for (std::int64_t k = k_end + 1;; ++k) {
      for (int b = 0; b < kBatches; ++b) {
        const std::int64_t t = time_of(k, b);
        if (t >= stop) {
          report("live", totals,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
          return totals.failures.load() == 0 ? 0 : 1;
        }
        const std::int64_t wait = t - now_ms();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
        post(client, url, encode_batch(b, k, k), static_cast<std::uint64_t>(series_per_batch),
             totals);
      }
    }
  }
  return 0;
}
