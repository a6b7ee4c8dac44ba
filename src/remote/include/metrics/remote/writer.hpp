// Remote write out (API.md Part 2, "Prometheus exposition and remote
// write"): every sample the server stores goes to a remote-write 1.0
// receiver (Prometheus, VictoriaMetrics, Mimir, Thanos Receive ...): a
// protobuf WriteRequest in snappy's block format with the four headers,
// through the project's one outbound client (metrics::outbound).
//
//   remote::RemoteWriter writer({.url = "http://vm:8428/api/v1/write",
//                                .headers = {"X-Scope-OrgID: team-a"},
//                                .state_path = "/var/lib/metrics-history/remote-write-...state",
//                                .history = reader});
//   writer.accept(received_ms, points, refs);   // from the ingest fan-out; never blocks
//   ...
//   writer.stop();                              // flushes what it can within shutdown_flush
//
// One RemoteWriter per destination, with one sending thread:
// - accept() copies the points into a bounded queue (max_queue_samples);
//   when it is full the batch is dropped, counted and logged, never waited for.
// - The thread sends a request when max_batch_samples are queued or
//   flush_interval after the oldest queued one came. A request holds each
//   series once, its samples in timestamp order (a repeated timestamp keeps
//   the last value), and never a sample older than one already sent for
//   the series (so a receiver never sees a series go back in time).
// - 2xx: delivered. 5xx, 429 and transport failures are retried with a
//   backoff of min_backoff doubling to max_backoff, as long as it takes;
//   any other status is refused for good: its samples are counted as
//   failed and the answer's body is logged.
// - Catch-up: samples dropped from the queue (an outage longer than the
//   queue holds) are read back from the history (`history`), from the
//   oldest one lost, in time windows, then the queue takes over again; the
//   per-series "last sent" filter keeps the overlap from being sent twice.
//   A watermark (every sample at or before it was delivered or refused) is
//   kept in state_path and, at the next start, the history after it is
//   sent first: an outage or a restart shorter than the retention loses
//   nothing. A clean stop leaves an exact watermark; after a crash the last
//   few seconds before it may be sent again.
//
// Thread-safety: accept(), stats() and stop() may be called from any
// threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/history/store.hpp"
#include "metrics/outbound/client.hpp"

namespace metrics::remote {

// Samples of every series with from_ms <= t <= to_ms (the history store's
// read_range over all series).
using HistoryReader =
    std::function<std::vector<history::SeriesSamples>(std::int64_t from_ms, std::int64_t to_ms)>;

struct RemoteWriteOptions {
  std::string url{};
  // Extra header lines "Name: value" (tokens, X-Scope-OrgID tenants).
  std::vector<std::string> headers{};
  // Labels added to every series sent (Prometheus's external_labels), e.g.
  // {"replica", "a"} so that replicas never write into one series; a
  // series' own label of that name wins. Names must be valid label names.
  std::vector<std::pair<std::string, std::string>> external_labels{};
  // Samples the queue holds at most; a batch that does not fit is dropped
  // (and caught up from the history when there is one).
  std::size_t max_queue_samples = 100'000;
  // Samples in one request at most.
  std::size_t max_batch_samples = 2000;
  // A request goes at the latest this long after its oldest sample was queued.
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds min_backoff{30};
  std::chrono::milliseconds max_backoff{5000};
  // Bound of one request.
  std::chrono::milliseconds timeout{10000};
  // stop() keeps sending what is queued for at most this long.
  std::chrono::milliseconds shutdown_flush{3000};
  // The watermark's file; empty: none (no catch-up across restarts).
  std::string state_path{};
  // Where catch-up reads from; empty: no catch-up (drops are lost).
  HistoryReader history{};
  // Catch-up reads the history up to now - settle (what the history sink
  // may not have appended yet is left to the queue).
  std::chrono::milliseconds settle{1000};
  // Samples older than now - publish_margin are taken to have been
  // accepted already (for the watermark: writes in flight take this long
  // at most from their receive time to the fan-out).
  std::chrono::milliseconds publish_margin{5000};
  std::string user_agent = "metrics-server-remote-write/1.0";
  // Test seam: sends the requests; null: an outbound::Client.
  std::shared_ptr<outbound::Transporter> transport{};
  // Test seam: wall-clock milliseconds; null: the system clock.
  std::function<std::int64_t()> now_ms{};
};

struct RemoteWriteStats {
  std::string url{};
  std::uint64_t sent_samples = 0;     // delivered (2xx), catch-up included
  std::uint64_t sent_requests = 0;    // delivered requests
  std::uint64_t catchup_samples = 0;  // of sent_samples, read back from the history
  std::uint64_t failed_samples = 0;   // refused for good (a 4xx other than 429)
  std::uint64_t failed_requests = 0;
  std::uint64_t retried_requests = 0;  // attempts that were retried (5xx, 429, transport)
  std::uint64_t dropped_samples = 0;   // queue full (caught up later when there is a history)
  std::uint64_t skipped_samples = 0;   // older than what was sent for their series
  std::size_t queued_samples = 0;      // now
  std::int64_t watermark_ms = 0;       // every sample at or before it is done
  bool catching_up = false;
};

// ---- Pure pieces (unit-tested) -------------------------------------------

// What a receiver's answer means.
enum class Outcome : std::uint8_t { delivered, retry, refused };
[[nodiscard]] Outcome classify(const outbound::Response& response) noexcept;

// The wait after one of `current`: doubled, within [min, max].
[[nodiscard]] std::chrono::milliseconds next_backoff(std::chrono::milliseconds current,
                                                     std::chrono::milliseconds min,
                                                     std::chrono::milliseconds max) noexcept;

// Builds WriteRequests out of samples given in any order: groups them by
// series (ref), orders each series by time, keeps the last value given for
// a repeated timestamp and leaves out samples at or before what
// `last_sent` holds for their series. The name and labels must outlive build().
class BatchBuilder {
 public:
  void add(std::uint64_t ref, std::string_view name, const core::Labels& labels, std::int64_t t_ms,
           double value);
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }

  struct Request {
    std::string body;  // the WriteRequest, uncompressed
    std::size_t samples = 0;
    // (ref, newest timestamp) of every series in it.
    std::vector<std::pair<std::uint64_t, std::int64_t>> newest;
  };
  // Requests of at most max_samples samples each (a series may be split
  // over consecutive ones, in time order); `skipped` counts the samples left
  // out by the filter. Empties the builder.
  // `external`: labels added to every series (sorted by name; a series'
  // own label of the same name wins).
  [[nodiscard]] std::vector<Request> build(
      std::size_t max_samples, const std::unordered_map<std::uint64_t, std::int64_t>& last_sent,
      std::uint64_t& skipped, std::span<const core::LabelView> external = {});

 private:
  struct Entry {
    std::uint64_t ref;
    std::int64_t t;
    double value;
    std::uint32_t seq;
    std::string_view name;
    const core::Labels* labels;
  };
  std::vector<Entry> entries_;
};

// The state file of a destination inside `dir`: remote-write-<hash>.state.
[[nodiscard]] std::string state_file(std::string_view dir, std::string_view url);
// Reads a watermark written by write_state (nullopt: missing or unreadable).
[[nodiscard]] std::optional<std::int64_t> read_state(const std::string& path);
// Writes it (temporary file and rename); false on failure.
bool write_state(const std::string& path, std::string_view url, std::int64_t watermark_ms);

// The URL for logs and stats: user:password@ of the authority replaced.
[[nodiscard]] std::string redact_url(std::string_view url);

// ---- The writer --------------------------------------------------------

class RemoteWriter {
 public:
  explicit RemoteWriter(RemoteWriteOptions options);
  ~RemoteWriter();  // stop()
  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;

  // points[i] is stored under refs[i] at received_ms, or at times[i] when
  // `times` is given (remote write in: the sender's own timestamps, as
  // append_history() stores them). Never blocks, never throws.
  void accept(std::int64_t received_ms, std::span<const core::Point> points,
              std::span<const std::uint64_t> refs,
              std::span<const std::int64_t> times = {}) noexcept;

  // Sends what is queued for at most shutdown_flush, writes the watermark
  // and ends the thread; later batches are dropped. Idempotent.
  void stop() noexcept;

  // True once nothing is queued, in flight or being caught up (tests).
  [[nodiscard]] bool idle() const;

  [[nodiscard]] RemoteWriteStats stats() const;
  // As logged (redact_url).
  [[nodiscard]] const std::string& url() const noexcept { return shown_; }

 private:
  struct Batch {
    std::int64_t received_ms = 0;
    std::vector<core::Point> points;
    std::vector<std::uint64_t> refs;
    std::vector<std::int64_t> times;      // empty: every point at received_ms
    std::int64_t min_ms = 0, max_ms = 0;  // the samples' times (for a catch-up)
    std::chrono::steady_clock::time_point queued_at{};
  };
  enum class Send : std::uint8_t { done, abandoned };

  void run();
  void live_turn(std::unique_lock<std::mutex>& lock);
  // Sends the history from from_ms on, at least through until_ms.
  void catch_up(std::int64_t from_ms, std::int64_t until_ms);
  // Sends the requests in order; abandoned when stopping past the deadline.
  Send send_all(std::vector<BatchBuilder::Request>& requests, bool from_history);
  Send send_one(BatchBuilder::Request& request, bool from_history);
  // Waits `delay` unless the stop deadline comes first (false then).
  bool wait_backoff(std::chrono::milliseconds delay);
  void advance_watermark(std::int64_t candidate);
  void persist(bool force);
  void prune_last_sent();
  [[nodiscard]] std::int64_t now_ms() const;

  RemoteWriteOptions options_;
  std::vector<core::LabelView> external_;  // options_.external_labels, sorted by name
  std::string shown_;                      // the URL in logs and stats
  std::shared_ptr<outbound::Transporter> transport_;
  std::vector<std::string> request_headers_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Batch> queue_;
  // Changed under mu_; read without it by accept() before copying.
  std::atomic<std::size_t> queued_samples_{0};
  std::chrono::steady_clock::time_point oldest_queued_{};
  // The oldest receive time dropped since the last catch-up, and
  std::int64_t lost_from_ = std::numeric_limits<std::int64_t>::max();
  std::int64_t lost_until_ = std::numeric_limits<std::int64_t>::min();  // the newest
  bool busy_ = false;     // the thread holds samples or catches up
  bool waiting_ = false;  // the thread waits for samples (accept() notifies only then)
  bool stopping_ = false;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  std::atomic<std::int64_t> abort_at_{std::numeric_limits<std::int64_t>::max()};
  RemoteWriteStats stats_;
  std::uint64_t unlogged_drops_ = 0;
  std::chrono::steady_clock::time_point last_drop_log_{};
  std::chrono::steady_clock::time_point last_refusal_log_{};

  // The sending thread's own.
  std::unordered_map<std::uint64_t, std::int64_t> last_sent_;
  std::int64_t watermark_ = 0;
  std::int64_t persisted_ = std::numeric_limits<std::int64_t>::min();
  std::chrono::steady_clock::time_point last_persist_{};
  std::chrono::steady_clock::time_point last_prune_{};
  std::chrono::steady_clock::time_point last_fail_log_{};
  std::uint64_t unlogged_fails_ = 0;
  bool failing_ = false;
  // A catch-up did not finish (stopped, or the history failed): the
  // watermark stays where it was until the next start.
  bool incomplete_ = false;

  std::mutex stop_mu_;
  std::thread thread_;
};

}  // namespace metrics::remote
