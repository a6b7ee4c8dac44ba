// The in-process metrics agent: samples allocator, process and machine
// figures of the process it lives in and pushes them to a metrics server
// (POST <address>/updates/, gzip'd JSON envelopes that carry the process's
// identity labels, or one request per metric, HMAC-signed when a key is
// set), from its own background threads.
//
//   metrics::agent::AgentConfig config;
//   config.address = "localhost:8080";
//   config.labels = {{"env", "prod"}};          // instance and job are set by default
//   metrics::agent::Agent agent(config);       // starts sampling and reporting
//   agent.add_counter("RequestsServed", 1);    // the host's own metrics
//   agent.add_counter("Requests", 1, {{"route", "/api"}});  // a labelled series
//   agent.set_gauge("QueueDepth", 17.0);
//   ...
//   agent.shutdown(std::chrono::seconds{2});    // sends what is left; the destructor does it too
//
// The agent lives inside someone else's process: no public method throws,
// failures are reported by return values, and nothing the server does can
// take the host down. While the server is away the agent keeps what it could
// not send (counters summed, gauges latest) in a bounded set and sends it later.
//
// Thread-safety: every public method may be called from any thread at any
// time, concurrently, including during shutdown(); after shutdown() the
// metric setters return false and flush() returns false.
//
// Do not give an Agent static storage duration without calling shutdown()
// before main returns: libcurl and OpenSSL may already be torn down by the
// time static destructors run.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace metrics::agent {

enum class LogLevel : std::uint8_t { debug, info, warn, error };

// How metrics travel: batch is POST /updates/ with a JSON array (max_batch
// metrics per request); json is one POST /update/ with a JSON object per
// metric; text is one POST /update/{type}/{name}/{value} per metric. All
// three are kept-alive, signed, retried and merged back the same way.
enum class SendMode : std::uint8_t { batch, json, text };
// "batch", "json", "text".
[[nodiscard]] std::string_view to_string(SendMode mode) noexcept;
// Parses the names above (exact, lowercase); false for anything else.
[[nodiscard]] bool parse_send_mode(std::string_view text, SendMode& mode) noexcept;

// One label, name=value (API.md Part 2): names match
// [a-zA-Z_][a-zA-Z0-9_]*, at most 128 bytes, and may not start with "__";
// values are UTF-8, at most 1024 bytes; a label with an empty value is
// ignored. At most 32 labels per series.
struct Label {
  std::string name;
  std::string value;
  friend bool operator==(const Label&, const Label&) = default;
};

struct AgentConfig {
  // "host:port" (sent as http://host:port) or a full http:// or https:// URL;
  // batches go to <address>/updates/.
  std::string address = "localhost:8080";
  // How often metrics are sampled, and how often samples are sent.
  std::chrono::milliseconds poll_interval{2000};
  std::chrono::milliseconds report_interval{10000};
  // Signing key; empty disables signing and answer verification.
  std::string key;
  // For https:// addresses: a PEM file of the CA certificates to trust;
  // empty trusts the system store. The server's certificate and host name
  // are always verified.
  std::string ca_file;
  // Credentials for a server (its --web-config) or a proxy in front of it
  // that wants them: "user:password" sent as HTTP Basic, or a token sent as
  // "Authorization: Bearer" (wins when both are set). Empty: none.
  std::string basic_auth;
  std::string bearer_token;
  // Most requests in flight at once (RATE_LIMIT); at least 1.
  unsigned rate_limit = 1;
  // One request per batch (default) or per metric (SEND_MODE).
  SendMode send_mode = SendMode::batch;
  // The process's identity, sent as the labels `instance` and `job` in the
  // envelope of every batch (in json mode on every metric; text mode cannot
  // carry labels and writes unlabelled, classic values only). Empty
  // instance: "<hostname>:<pid>", with the pid read when the agent starts
  // (so it is the new program's after an exec); empty job: the program's
  // name (program_invocation_short_name, argv[0]'s base name).
  std::string instance;
  std::string job;
  // Extra identity labels (--label name=value, LABELS=k=v,k2=v2). `instance`
  // and `job` are set by the fields above, not here.
  std::vector<Label> labels;
  // Most distinct metrics kept while they cannot be sent. At the bound, new
  // names are dropped (and counted); known names are still merged, so counters
  // already held stay exact.
  std::size_t max_pending = 10'000;
  // Most metrics in one request; bigger sets are sent as several requests.
  std::size_t max_batch = 1'000;
  // Upper bound for one HTTP request, connection included. In json and text
  // modes it bounds each single-metric request.
  std::chrono::milliseconds request_timeout{5000};
  // Waits between attempts of one batch: the defaults make 4 attempts,
  // 1 s, 3 s and 5 s apart. A 429/503 answer with Retry-After waits that long
  // instead (at most 60 s). After the last attempt the batch is merged back
  // into the pending set and sent with a later report.
  std::vector<std::chrono::milliseconds> retry_backoff{
      std::chrono::seconds{1}, std::chrono::seconds{3}, std::chrono::seconds{5}};
  // Which collectors run; all on by default. PollCount and RandomValue are
  // always sent.
  bool collect_allocator = true;
  bool collect_process = true;
  bool collect_system = true;
  // Optional log sink, called from the agent's threads; must not throw (a
  // throwing sink is ignored). Empty: the agent is silent. A failed send is
  // logged at once (warn), later failures at most once per
  // failure_log_interval with a count, and the recovery (info).
  std::chrono::milliseconds failure_log_interval{30000};
  std::function<void(LogLevel, std::string_view)> log;
};

// Returns a message naming the offending field when the configuration cannot
// work (empty or malformed address, zero intervals, rate limit 0, a label
// that breaks a rule above: the message names the label, ...), an empty
// string when it is fine.
[[nodiscard]] std::string validate(const AgentConfig& config) noexcept;

// Counts since the agent started; a snapshot, safe to read at any time.
struct AgentStats {
  std::uint64_t polls = 0;             // samples taken (= PollCount sent in total)
  std::uint64_t requests_ok = 0;       // requests answered 2xx with a valid signature
  std::uint64_t requests_failed = 0;   // attempts that failed (network, status, signature)
  std::uint64_t batches_requeued = 0;  // batches merged back after their last attempt
  std::uint64_t batches_rejected =
      0;  // batches the server refused as invalid (400/413/415), dropped
  std::uint64_t metrics_dropped = 0;  // updates dropped at the max_pending bound or on overflow
  std::size_t pending = 0;            // distinct metrics waiting to be sent
  unsigned max_in_flight = 0;         // most requests seen in flight at once
};

class Agent {
 public:
  // Validates the configuration and starts the background threads. When the
  // configuration is invalid or the threads cannot start, the agent does not
  // run: running() is false and error() says why.
  explicit Agent(AgentConfig config) noexcept;
  // shutdown(2 s) if it has not been called.
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  [[nodiscard]] bool running() const noexcept;
  [[nodiscard]] std::string error() const noexcept;

  // The identity labels sent with every report (instance, job and the
  // extra labels), sorted by name; empty when the agent does not run.
  [[nodiscard]] std::vector<Label> identity() const noexcept;

  // Sets a gauge of the host's own; it is sent with every report from now on.
  // False for an invalid name (see core::validate_name), a non-finite value,
  // an invalid label, or a stopped agent. With labels it is the series of
  // that name and those labels (added to the identity's, winning on a
  // clash); each series is held and sent on its own.
  bool set_gauge(std::string_view name, double value) noexcept;
  bool set_gauge(std::string_view name, double value, std::span<const Label> labels) noexcept;
  bool set_gauge(std::string_view name, double value,
                 std::initializer_list<Label> labels) noexcept {
    return set_gauge(name, value, std::span<const Label>(labels.begin(), labels.size()));
  }
  // Adds to a counter of the host's own; the sum of the deltas since the last
  // sample is sent. False for an invalid name, an overflowing sum, an invalid
  // label, or a stopped agent. Labels as for set_gauge.
  bool add_counter(std::string_view name, std::int64_t delta) noexcept;
  bool add_counter(std::string_view name, std::int64_t delta,
                   std::span<const Label> labels) noexcept;
  bool add_counter(std::string_view name, std::int64_t delta,
                   std::initializer_list<Label> labels) noexcept {
    return add_counter(name, delta, std::span<const Label>(labels.begin(), labels.size()));
  }

  // Samples now and sends everything held; true when all of it was
  // acknowledged before the timeout.
  bool flush(std::chrono::milliseconds timeout) noexcept;
  // Stops sampling, samples one last time and sends what is held within the
  // timeout, then stops the threads. True when nothing was left unsent.
  // Later calls return the first result at once. It returns by the
  // deadline even when a sender still waits for an answer (libcurl notices
  // the abort up to a second later); the destructor joins that thread.
  bool shutdown(std::chrono::milliseconds timeout) noexcept;

  [[nodiscard]] AgentStats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace metrics::agent
