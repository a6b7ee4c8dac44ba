// Runs the load: N simulated agents over N kept-alive loopback connections,
// then reads everything back and checks it against the ledger.
//
// A run has three phases separated by barriers: connect (and read the
// counters' baselines), load (closed loop or paced, until the duration or the
// request budget runs out, in-flight requests finished), verify (pipelined
// POST /value/ reads of every series and every classic value, ledger.hpp). Each thread owns one
// io_context and the agents assigned to it, with its own statistics, merged at the end, so the hot
// path shares nothing between threads.
//
//   Report report = run(options);       // throws std::runtime_error on setup errors
//   std::cout << format_text(report);
//
// run() is blocking; it is safe to call from one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "metrics/loadgen/histogram.hpp"
#include "metrics/loadgen/ledger.hpp"
#include "metrics/loadgen/options.hpp"
#include "metrics/loadgen/proc_status.hpp"

namespace metrics::loadgen {

struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t acknowledged = 0;    // 200
  std::uint64_t rejected = 0;        // 4xx and 503: nothing stored
  std::uint64_t in_doubt = 0;        // no answer, or another 5xx
  std::uint64_t metric_updates = 0;  // metrics carried by acknowledged requests
  std::uint64_t connect_errors = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t transport_errors = 0;  // resets, early EOF, malformed answers
  std::uint64_t reconnects = 0;
  std::uint64_t retry_after_waits = 0;  // pauses for a Retry-After
  std::uint64_t read_failures = 0;      // failed baseline/verify read-backs (retried)
  // --idempotency-keys: attempts that resent a request in doubt with its
  // key, and answers that said the key had been applied (Idempotent-Replayed).
  std::uint64_t resent = 0;
  std::uint64_t replayed = 0;
  std::map<unsigned, std::uint64_t> status_counts;  // every non-200 status seen
  LatencyHistogram latency;                         // nanoseconds, answered requests

  void merge(const Stats& other);
  [[nodiscard]] std::uint64_t errors() const noexcept {
    return rejected + in_doubt + connect_errors;
  }
};

struct Report {
  Options options;
  std::uint32_t agents_connected = 0;
  std::uint32_t agents_failed = 0;  // never connected
  double connect_seconds = 0;
  double load_seconds = 0;
  double verify_seconds = 0;
  Stats stats;
  bool verified = false;
  VerifyResult verify;
  std::optional<ProcessMemory> server_before;     // before any connection
  std::optional<ProcessMemory> server_connected;  // all connections open, before the load
  std::optional<ProcessMemory> server_after;      // after the load, connections still open
  int nofile_limit = 0;

  [[nodiscard]] double batches_per_second() const noexcept;
  [[nodiscard]] double updates_per_second() const noexcept;
  // (connected - before) / agents_connected, when the pid was given.
  [[nodiscard]] std::optional<double> server_kib_per_connection() const noexcept;
  // 0: passed; 1: integrity mismatch or unverifiable metrics; 3: the run
  // itself failed (no agent connected, nothing acknowledged, or --strict
  // and errors were seen).
  [[nodiscard]] int exit_code() const noexcept;
};

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
int raise_fd_limit() noexcept;

[[nodiscard]] Report run(const Options& options);

[[nodiscard]] std::string format_text(const Report& report);
[[nodiscard]] std::string format_json(const Report& report);

}  // namespace metrics::loadgen
