// RemoteWriter against a fake receiver (outbound::Transporter): what a
// request holds (decoded with the project's remote-write decoder), batching,
// the retry policy and its backoff, the bounded queue, catch-up from a real
// HistoryStore after an outage, and the watermark across restarts.
#include "metrics/remote/writer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"

namespace metrics::remote {
namespace {

using namespace std::chrono_literals;

struct Decoded {
  std::string series;  // labels as name=value,... in the order sent
  std::vector<exposition::Sample> samples;
};

std::vector<Decoded> decode(std::string_view wire) {
  const std::string plain = exposition::snappy_decompress(wire, 64 << 20);
  const auto req = exposition::decode_write_request(plain);
  std::vector<Decoded> out;
  for (const auto& s : req.series) {
    Decoded d;
    for (const auto& l : req.labels_of(s)) {
      if (!d.series.empty()) d.series += ",";
      d.series += std::string(l.name) + "=" + std::string(l.value);
    }
    const auto samples = req.samples_of(s);
    d.samples.assign(samples.begin(), samples.end());
    out.push_back(std::move(d));
  }
  return out;
}

// A receiver: answers with status(attempt number), records what it got.
class FakeReceiver : public outbound::Transporter {
 public:
  std::function<long(std::size_t)> status = [](std::size_t) { return 204L; };

  outbound::Response perform(const outbound::Request& request) noexcept override {
    std::lock_guard lock(mu);
    const std::size_t attempt = attempts.size();
    attempts.push_back(std::chrono::steady_clock::now());
    headers = request.headers;
    url = request.url;
    outbound::Response r;
    r.status = status(attempt);
    if (r.status == 0) {
      r.transport = outbound::Transport::not_sent;
      r.error = "Connection refused";
      return r;
    }
    r.transport = outbound::Transport::answered;
    if (r.status >= 200 && r.status < 300) {
      requests.push_back(decode(request.body));
    } else {
      r.body = "refused: status " + std::to_string(r.status);
    }
    return r;
  }

  // (series, t) -> how many times delivered.
  std::map<std::pair<std::string, std::int64_t>, int> delivered() {
    std::lock_guard lock(mu);
    std::map<std::pair<std::string, std::int64_t>, int> out;
    for (const auto& req : requests)
      for (const auto& s : req)
        for (const auto& x : s.samples)
          ++out[{s.series, x.timestamp_ms}];
    return out;
  }

  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> attempts;
  std::vector<std::vector<Decoded>> requests;
  std::vector<std::string> headers;
  std::string url;
};

template <typename F>
bool eventually(F&& f, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- Pure pieces ---------------------------------------------------------

TEST(RemoteClassify, RetriesFiveHundredsAnd429AndTransportFailuresOnly) {
  outbound::Response r;
  r.transport = outbound::Transport::not_sent;
  EXPECT_EQ(classify(r), Outcome::retry);
  r.transport = outbound::Transport::unknown;
  EXPECT_EQ(classify(r), Outcome::retry);
  r.transport = outbound::Transport::answered;
  for (long s : {200L, 204L})
    EXPECT_EQ((r.status = s, classify(r)), Outcome::delivered) << s;
  for (long s : {429L, 500L, 502L, 503L, 504L})
    EXPECT_EQ((r.status = s, classify(r)), Outcome::retry) << s;
  for (long s : {400L, 401L, 403L, 404L, 409L, 413L, 301L})
    EXPECT_EQ((r.status = s, classify(r)), Outcome::refused) << s;
}

TEST(RemoteBackoff, DoublesFrom30MsTo5s) {
  std::vector<long> waits;
  auto d = 30ms;
  for (int i = 0; i < 10; ++i) {
    waits.push_back(d.count());
    d = next_backoff(d, 30ms, 5000ms);
  }
  EXPECT_EQ(waits, (std::vector<long>{30, 60, 120, 240, 480, 960, 1920, 3840, 5000, 5000}));
}

TEST(RemoteBatchBuilder, GroupsBySeriesInTimeOrderAndKeepsTheLastValueOfATimestamp) {
  const auto a = core::Labels::make({{"job", "x"}});
  const auto b = core::Labels::make({{"instance", "h:1"}, {"job", "y"}});
  BatchBuilder builder;
  builder.add(2, "b_total", b, 30, 3);
  builder.add(1, "a", a, 20, 2);
  builder.add(1, "a", a, 10, 1);
  builder.add(2, "b_total", b, 10, 1);
  builder.add(1, "a", a, 20, 2.5);  // the same timestamp again: the later value wins
  builder.add(3, "bad.name-x", a, 5, 7);
  std::uint64_t skipped = 0;
  auto requests = builder.build(100, {}, skipped);
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].samples, 5U);
  EXPECT_EQ(skipped, 1U);
  const auto got = decode(exposition::snappy_compress(requests[0].body));
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].series, "__name__=a,job=x");
  ASSERT_EQ(got[0].samples.size(), 2U);
  EXPECT_EQ(got[0].samples[0].timestamp_ms, 10);
  EXPECT_EQ(got[0].samples[1].timestamp_ms, 20);
  EXPECT_EQ(got[0].samples[1].value, 2.5);
  EXPECT_EQ(got[1].series, "__name__=b_total,instance=h:1,job=y");
  EXPECT_EQ(got[1].samples.size(), 2U);
  // A name PromQL cannot spell is mapped as /metrics maps it.
  EXPECT_EQ(got[2].series, "__name__=bad_name_x,job=x");
  EXPECT_TRUE(builder.empty());
}

TEST(RemoteBatchBuilder, SplitsAtTheLimitAndLeavesOutWhatWasSent) {
  const auto l = core::Labels::make({{"job", "x"}});
  BatchBuilder builder;
  for (int t = 1; t <= 25; ++t)
    builder.add(7, "m", l, t, t);
  for (int t = 1; t <= 5; ++t)
    builder.add(8, "n", l, t, t);
  std::uint64_t skipped = 0;
  // Series 7 was sent up to t=10 already.
  auto requests = builder.build(10, {{7, 10}}, skipped);
  EXPECT_EQ(skipped, 10U);
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].samples, 10U);
  EXPECT_EQ(requests[1].samples, 10U);
  const auto first = decode(exposition::snappy_compress(requests[0].body));
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0].samples.front().timestamp_ms, 11);
  EXPECT_EQ(first[0].samples.back().timestamp_ms, 20);
  const auto second = decode(exposition::snappy_compress(requests[1].body));
  ASSERT_EQ(second.size(), 2U);
  EXPECT_EQ(second[0].samples.front().timestamp_ms, 21);
  EXPECT_EQ(second[1].series, "__name__=n,job=x");
  EXPECT_EQ(requests[1].newest,
            (std::vector<std::pair<std::uint64_t, std::int64_t>>{{7, 25}, {8, 5}}));
}

TEST(RemoteBatchBuilder, ExternalLabelsGoInSortedPlaceAndASeriesOwnLabelWins) {
  const auto a = core::Labels::make({{"job", "x"}});
  const auto b = core::Labels::make({{"job", "y"}, {"replica", "own"}});
  BatchBuilder builder;
  builder.add(1, "a", a, 10, 1);
  builder.add(2, "b", b, 10, 2);
  builder.add(3, "A.b", a, 10, 3);  // mapped, and "__name__" sorts after upper-case "Z"
  std::uint64_t skipped = 0;
  const std::vector<core::LabelView> external{{"Zone", "eu"}, {"replica", "r1"}};
  auto requests = builder.build(100, {}, skipped, external);
  ASSERT_EQ(requests.size(), 1U);
  const auto got = decode(exposition::snappy_compress(requests[0].body));
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].series, "Zone=eu,__name__=a,job=x,replica=r1");
  EXPECT_EQ(got[1].series, "Zone=eu,__name__=b,job=y,replica=own");
  EXPECT_EQ(got[2].series, "Zone=eu,__name__=A_b,job=x,replica=r1");
}

TEST(RemoteUrl, CredentialsNeverShow) {
  EXPECT_EQ(redact_url("https://user:pw@vm:8428/api/v1/write"),
            "https://<redacted>@vm:8428/api/v1/write");
  EXPECT_EQ(redact_url("http://vm:8428/api/v1/write?a=b@c"), "http://vm:8428/api/v1/write?a=b@c");
  EXPECT_EQ(redact_url("http://vm:8428"), "http://vm:8428");
}

TEST(RemoteState, WritesAndReadsTheWatermark) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("remote_state_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = state_file(dir.string(), "http://a:1/api/v1/write");
  EXPECT_NE(path, state_file(dir.string(), "http://b:1/api/v1/write"));
  EXPECT_FALSE(read_state(path).has_value());
  ASSERT_TRUE(write_state(path, "http://a:1/api/v1/write", 1'700'000'000'123));
  EXPECT_EQ(read_state(path), 1'700'000'000'123);
  std::filesystem::remove_all(dir);
}

// ---- The writer ----------------------------------------------------------

struct Pusher {
  std::vector<core::Point> points;
  std::vector<std::uint64_t> refs;
};

// n gauges m0..m{n-1} (refs 1..n) at value v.
Pusher gauges(int n, double v) {
  Pusher p;
  for (int i = 0; i < n; ++i) {
    p.points.push_back(
        core::Point::gauge("m" + std::to_string(i), v, core::Labels::make({{"job", "t"}})));
    p.refs.push_back(static_cast<std::uint64_t>(i + 1));
  }
  return p;
}

TEST(RemoteWriter, SendsEverySampleInBatchesWithTheFourHeaders) {
  auto rx = std::make_shared<FakeReceiver>();
  RemoteWriter w({.url = "http://u:pw@rx/api/v1/write",
                  .headers = {"X-Scope-OrgID: team-a"},
                  .max_batch_samples = 2000,
                  .flush_interval = 50ms,
                  .transport = rx});
  // 3 batches of 1500 samples at three times.
  for (int k = 0; k < 3; ++k) {
    const auto p = gauges(1500, k);
    w.accept(1000 + k, p.points, p.refs);
  }
  ASSERT_TRUE(eventually([&] { return w.stats().sent_samples == 4500; }));
  const auto s = w.stats();
  EXPECT_EQ(s.failed_samples, 0U);
  EXPECT_EQ(s.dropped_samples, 0U);
  {
    std::lock_guard lock(rx->mu);
    for (const auto& req : rx->requests) {
      std::size_t n = 0;
      for (const auto& series : req)
        n += series.samples.size();
      EXPECT_LE(n, 2000U);
    }
    EXPECT_GE(rx->requests.size(), 3U);
    // Sent to the URL as given; shown without its credentials.
    EXPECT_EQ(rx->url, "http://u:pw@rx/api/v1/write");
    EXPECT_EQ(w.url(), "http://<redacted>@rx/api/v1/write");
    EXPECT_EQ(w.stats().url, "http://<redacted>@rx/api/v1/write");
    const std::vector<std::string> want{
        "Content-Encoding: snappy", "Content-Type: application/x-protobuf",
        "X-Prometheus-Remote-Write-Version: 0.1.0", "X-Scope-OrgID: team-a"};
    for (const auto& h : want)
      EXPECT_NE(std::find(rx->headers.begin(), rx->headers.end(), h), rx->headers.end()) << h;
    EXPECT_TRUE(std::any_of(rx->headers.begin(), rx->headers.end(),
                            [](const std::string& h) { return h.starts_with("User-Agent: "); }));
  }
  const auto got = rx->delivered();
  EXPECT_EQ(got.size(), 4500U);
  for (const auto& [key, times] : got)
    EXPECT_EQ(times, 1) << key.first << "@" << key.second;
  // Each series in time order: m7 holds 1000, 1001, 1002 with values 0, 1, 2.
  std::vector<std::int64_t> m7;
  {
    std::lock_guard lock(rx->mu);
    for (const auto& req : rx->requests)
      for (const auto& series : req)
        if (series.series == "__name__=m7,job=t")
          for (const auto& x : series.samples)
            m7.push_back(x.timestamp_ms);
  }
  EXPECT_EQ(m7, (std::vector<std::int64_t>{1000, 1001, 1002}));
}

TEST(RemoteWriter, AFewSamplesGoAfterTheFlushInterval) {
  auto rx = std::make_shared<FakeReceiver>();
  RemoteWriter w({.url = "http://rx/", .flush_interval = 200ms, .transport = rx});
  const auto start = std::chrono::steady_clock::now();
  const auto p = gauges(3, 1);
  w.accept(5, p.points, p.refs);
  ASSERT_TRUE(eventually([&] { return w.stats().sent_samples == 3; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
  EXPECT_EQ(w.stats().sent_requests, 1U);
}

// Samples that came in by remote write carry their sender's timestamps
// (as the history stores them), not the time the server took them.
TEST(RemoteWriter, SamplesWithTheirOwnTimesGoAtThoseTimes) {
  auto rx = std::make_shared<FakeReceiver>();
  RemoteWriter w({.url = "http://rx/", .flush_interval = 20ms, .transport = rx});
  const auto p = gauges(3, 1);
  const std::vector<std::int64_t> times{100, 200, 300};
  w.accept(99'999, p.points, p.refs, times);
  ASSERT_TRUE(eventually([&] { return w.stats().sent_samples == 3; }));
  std::vector<std::int64_t> sent;
  for (const auto& [key, count] : rx->delivered()) {
    EXPECT_EQ(count, 1);
    sent.push_back(key.second);
  }
  std::sort(sent.begin(), sent.end());
  EXPECT_EQ(sent, times);
}

TEST(RemoteWriter, RetriesFiveHundredsWithBackoffAndNeverOther4xx) {
  auto rx = std::make_shared<FakeReceiver>();
  rx->status = [](std::size_t attempt) { return attempt < 4 ? (attempt % 2 ? 429L : 503L) : 204L; };
  RemoteWriter w({.url = "http://rx/", .flush_interval = 1ms, .transport = rx});
  const auto p = gauges(2, 1);
  w.accept(5, p.points, p.refs);
  ASSERT_TRUE(eventually([&] { return w.stats().sent_samples == 2; }));
  EXPECT_EQ(w.stats().retried_requests, 4U);
  {
    std::lock_guard lock(rx->mu);
    ASSERT_EQ(rx->attempts.size(), 5U);
    // 30, 60, 120, 240 ms between the attempts (at least).
    const std::vector<std::chrono::milliseconds> least{30ms, 60ms, 120ms, 240ms};
    for (std::size_t i = 0; i < least.size(); ++i)
      EXPECT_GE(rx->attempts[i + 1] - rx->attempts[i], least[i]) << i;
  }

  auto refuse = std::make_shared<FakeReceiver>();
  refuse->status = [](std::size_t) { return 400L; };
  RemoteWriter r({.url = "http://rx/", .flush_interval = 1ms, .transport = refuse});
  r.accept(5, p.points, p.refs);
  ASSERT_TRUE(eventually([&] { return r.stats().failed_samples == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(r.stats().failed_requests, 1U);
  EXPECT_EQ(r.stats().retried_requests, 0U);
  std::lock_guard lock(refuse->mu);
  EXPECT_EQ(refuse->attempts.size(), 1U);
}

TEST(RemoteWriter, AFullQueueDropsWithoutBlocking) {
  auto rx = std::make_shared<FakeReceiver>();
  rx->status = [](std::size_t) { return 0L; };  // down
  RemoteWriter w({.url = "http://rx/",
                  .max_queue_samples = 100,
                  .flush_interval = 1ms,
                  .shutdown_flush = 100ms,
                  .transport = rx});
  const auto p = gauges(10, 1);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i)
    w.accept(i, p.points, p.refs);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  const auto s = w.stats();
  EXPECT_LE(s.queued_samples, 100U);
  // At most one queue's worth in flight and one queued.
  EXPECT_GE(s.dropped_samples, 10'000U - 200U);
  const auto stop_start = std::chrono::steady_clock::now();
  w.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, 2s);
}

// The queue overflows while the receiver is down; once it is back the lost
// samples come from the history: everything arrives exactly once.
TEST(RemoteWriter, CatchesUpFromTheHistoryAfterAnOutage) {
  history::HistoryOptions ho;
  ho.retention = std::chrono::hours{1};
  history::HistoryStore store(ho);
  auto rx = std::make_shared<FakeReceiver>();
  std::atomic<bool> down{true};
  rx->status = [&down](std::size_t) { return down.load() ? 503L : 204L; };
  RemoteWriter w({.url = "http://rx/",
                  .max_queue_samples = 50,
                  .max_batch_samples = 40,
                  .flush_interval = 5ms,
                  .max_backoff = 50ms,
                  .history =
                      [&store](std::int64_t from, std::int64_t to) {
                        return store.read_range([](auto, const auto&) { return true; }, from, to);
                      },
                  .settle = 20ms,
                  .transport = rx});
  std::set<std::pair<std::string, std::int64_t>> pushed;
  std::int64_t last_t = 0;
  for (int round = 0; round < 60; ++round) {
    if (round == 40) down = false;
    const std::int64_t t = std::max(wall_ms(), last_t + 1);
    last_t = t;
    auto p = gauges(10, round);
    for (std::size_t i = 0; i < p.points.size(); ++i) {
      store.append(p.refs[i], core::SeriesKey::of(p.points[i]), t, p.points[i].value);
      pushed.insert({"__name__=" + p.points[i].id + ",job=t", t});
    }
    w.accept(t, p.points, p.refs);
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(eventually([&] { return w.idle() && rx->delivered().size() == pushed.size(); }))
      << rx->delivered().size() << " of " << pushed.size();
  const auto got = rx->delivered();
  for (const auto& key : pushed)
    if (!got.contains(key))
      std::cerr << "missing " << key.first << "@" << key.second - pushed.begin()->second << "\n";
  for (const auto& key : pushed) {
    const auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key.first << "@" << key.second;
    EXPECT_EQ(it->second, 1) << key.first << "@" << key.second;
  }
  EXPECT_EQ(got.size(), pushed.size());
  const auto s = w.stats();
  EXPECT_GT(s.dropped_samples, 0U);
  EXPECT_GT(s.catchup_samples, 0U);
  EXPECT_GT(s.retried_requests, 0U);
  // Each series in time order across all requests.
  std::map<std::string, std::int64_t> newest;
  std::lock_guard lock(rx->mu);
  for (const auto& req : rx->requests)
    for (const auto& series : req)
      for (const auto& x : series.samples) {
        EXPECT_GT(x.timestamp_ms, newest[series.series]) << series.series;
        newest[series.series] = x.timestamp_ms;
      }
}

// A clean stop leaves an exact watermark; the next start sends what the
// history holds after it, and nothing before it again.
TEST(RemoteWriter, ANewStartSendsTheHistoryAfterTheWatermark) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("remote_restart_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto state = state_file(dir.string(), "http://rx/");
  history::HistoryOptions ho;
  ho.retention = std::chrono::hours{1};
  history::HistoryStore store(ho);
  const auto reader = [&store](std::int64_t from, std::int64_t to) {
    return store.read_range([](auto, const auto&) { return true; }, from, to);
  };
  auto rx = std::make_shared<FakeReceiver>();
  const auto first = gauges(5, 1);
  const std::int64_t t1 = wall_ms() - 10'000;
  {
    RemoteWriter w({.url = "http://rx/",
                    .flush_interval = 5ms,
                    .state_path = state,
                    .history = reader,
                    .settle = 20ms,
                    .transport = rx});
    for (std::size_t i = 0; i < first.points.size(); ++i)
      store.append(first.refs[i], core::SeriesKey::of(first.points[i]), t1, 1.0);
    w.accept(t1, first.points, first.refs);
    ASSERT_TRUE(eventually([&] { return w.stats().sent_samples == 5; }));
    w.stop();
  }
  const auto mark = read_state(state);
  ASSERT_TRUE(mark.has_value());
  EXPECT_GE(*mark, t1);
  // Samples the writer never saw (stored while it was not running).
  const std::int64_t t2 = *mark + 1;
  for (std::size_t i = 0; i < first.points.size(); ++i)
    store.append(first.refs[i], core::SeriesKey::of(first.points[i]), t2, 2.0);
  std::this_thread::sleep_for(30ms);
  RemoteWriter again({.url = "http://rx/",
                      .flush_interval = 5ms,
                      .state_path = state,
                      .history = reader,
                      .settle = 20ms,
                      .transport = rx});
  ASSERT_TRUE(eventually([&] { return again.stats().sent_samples == 5 && again.idle(); }));
  const auto got = rx->delivered();
  EXPECT_EQ(got.size(), 10U);
  for (const auto& [key, times] : got)
    EXPECT_EQ(times, 1) << key.first << "@" << key.second;
  EXPECT_EQ(again.stats().catchup_samples, 5U);
  again.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace metrics::remote
