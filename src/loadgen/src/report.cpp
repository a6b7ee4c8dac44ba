// Human and JSON forms of a Report.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "metrics/loadgen/runner.hpp"

namespace metrics::loadgen {
namespace {

void appendf(std::string& out, const char* format, auto... args) {
  char buf[512];
  const int n = std::snprintf(buf, sizeof buf, format, args...);
  if (n > 0) out.append(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
}

double ms(std::uint64_t nanos) {
  return static_cast<double>(nanos) / 1e6;
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      appendf(out, "\\u%04x", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_memory_json(std::string& out, const char* key, const std::optional<ProcessMemory>& m) {
  appendf(out, ",\"%s\":", key);
  if (m)
    appendf(out, "{\"rss_kib\":%" PRIu64 ",\"peak_kib\":%" PRIu64 "}", m->rss_kib, m->peak_kib);
  else
    out += "null";
}

}  // namespace

std::string format_text(const Report& r) {
  const Options& o = r.options;
  const Stats& s = r.stats;
  std::string out;
  appendf(
      out, "metrics-loadgen: %u agents -> %s, mode %s, %zu metrics/agent, %s%s%s, %s\n", o.agents,
      o.host_header.c_str(), std::string(to_string(o.workload.mode)).c_str(), o.workload.batch_size,
      o.workload.labelled() ? "labelled (one instance per agent)" : "unlabelled",
      o.gzip ? ", gzip" : "", o.key.empty() ? "" : ", signed",
      o.rate > 0 ? ("paced " + std::to_string(o.rate) + " req/s/agent").c_str() : "closed loop");
  appendf(out, "  run id %s, %u generator thread(s), open-files limit %d\n",
          o.workload.run_id.c_str(), o.threads, r.nofile_limit);
  appendf(out, "connected  %u agents in %.2f s (%u failed)\n", r.agents_connected,
          r.connect_seconds, r.agents_failed);
  appendf(out, "load       %.2f s: %" PRIu64 " requests sent, %" PRIu64 " acknowledged\n",
          r.load_seconds, s.sent, s.acknowledged);
  appendf(out, "throughput %.0f requests/s, %.0f metric updates/s\n", r.batches_per_second(),
          r.updates_per_second());
  appendf(out,
          "latency    p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms, "
          "mean %.3f ms\n",
          ms(s.latency.percentile(50)), ms(s.latency.percentile(90)), ms(s.latency.percentile(99)),
          ms(s.latency.percentile(99.9)), ms(s.latency.max()), s.latency.mean() / 1e6);
  appendf(out,
          "errors     rejected %" PRIu64 ", in doubt %" PRIu64 ", timeouts %" PRIu64
          ", transport %" PRIu64 ", connect %" PRIu64 ", reconnects %" PRIu64 "\n",
          s.rejected, s.in_doubt, s.timeouts, s.transport_errors, s.connect_errors, s.reconnects);
  if (s.retry_after_waits)
    appendf(out, "backoff    %" PRIu64 " waits for Retry-After\n", s.retry_after_waits);
  if (r.options.workload.idempotency_keys)
    appendf(out,
            "keys       idempotency keys on: %" PRIu64 " resends of requests in doubt, %" PRIu64
            " answered as replays\n",
            s.resent, s.replayed);
  if (s.read_failures)
    appendf(out, "read-back  %" PRIu64 " failed attempts (retried)\n", s.read_failures);
  if (!s.status_counts.empty()) {
    out += "statuses  ";
    for (const auto& [status, n] : s.status_counts)
      appendf(out, " %u x%" PRIu64, status, n);
    out += '\n';
  }
  if (r.server_before) {
    appendf(out, "server RSS before %" PRIu64 " KiB", r.server_before->rss_kib);
    if (r.server_connected)
      appendf(out, ", connected %" PRIu64 " KiB", r.server_connected->rss_kib);
    if (r.server_after)
      appendf(out, ", after load %" PRIu64 " KiB (peak %" PRIu64 " KiB)", r.server_after->rss_kib,
              r.server_after->peak_kib);
    out += '\n';
    if (auto per = r.server_kib_per_connection())
      appendf(out, "server memory per connection %.2f KiB\n", *per);
  }
  if (r.verified) {
    const VerifyResult& v = r.verify;
    appendf(out,
            "verify     %.2f s: %" PRIu64 " series and classic values checked, %" PRIu64
            " mismatches, %" PRIu64 " unverifiable, %" PRIu64 " requests in doubt -> %s\n",
            r.verify_seconds, v.checked, v.mismatches, v.unverified, v.in_doubt_requests,
            v.ok() ? "OK" : "FAILED");
    for (const auto& m : v.messages)
      out += "  " + m + "\n";
  } else {
    out += "verify     skipped (--no-verify)\n";
  }
  switch (r.exit_code()) {
    case 0:
      out += "result     PASS\n";
      break;
    case 1:
      out += r.verify.mismatches
                 ? "result     FAIL: the server does not hold what it acknowledged\n"
                 : "result     FAIL: some metrics could not be read back to verify them\n";
      break;
    default:
      out += "result     FAIL: the run did not complete";
      if (r.agents_connected == 0)
        out += " (no agent could connect)";
      else if (s.acknowledged == 0)
        out += " (nothing was acknowledged)";
      else
        out += " (--strict: errors were seen)";
      out += '\n';
      break;
  }
  return out;
}

std::string format_json(const Report& r) {
  const Options& o = r.options;
  const Stats& s = r.stats;
  std::string out = "{\"options\":{";
  out += "\"address\":";
  append_json_string(out, o.host_header);
  appendf(out, ",\"agents\":%u,\"duration_s\":%.3f,\"requests\":%" PRIu64, o.agents,
          std::chrono::duration<double>(o.duration).count(), o.requests);
  appendf(out,
          ",\"mode\":\"%s\",\"batch_size\":%zu,\"labels\":%s,\"gzip\":%s,\"signed\":%s,"
          "\"rate\":%.3f",
          std::string(to_string(o.workload.mode)).c_str(), o.workload.batch_size,
          o.workload.labelled() ? "true" : "false", o.gzip ? "true" : "false",
          o.key.empty() ? "false" : "true", o.rate);
  out += ",\"run_id\":";
  append_json_string(out, o.workload.run_id);
  appendf(out, ",\"threads\":%u}", o.threads);
  appendf(out, ",\"agents_connected\":%u,\"agents_failed\":%u", r.agents_connected,
          r.agents_failed);
  appendf(out, ",\"connect_s\":%.3f,\"load_s\":%.3f,\"verify_s\":%.3f", r.connect_seconds,
          r.load_seconds, r.verify_seconds);
  appendf(out,
          ",\"sent\":%" PRIu64 ",\"acknowledged\":%" PRIu64 ",\"metric_updates\":%" PRIu64
          ",\"requests_per_s\":%.1f,\"updates_per_s\":%.1f",
          s.sent, s.acknowledged, s.metric_updates, r.batches_per_second(), r.updates_per_second());
  appendf(out,
          ",\"latency_ms\":{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,"
          "\"mean\":%.4f,\"count\":%" PRIu64 "}",
          ms(s.latency.percentile(50)), ms(s.latency.percentile(90)), ms(s.latency.percentile(99)),
          ms(s.latency.percentile(99.9)), ms(s.latency.max()), s.latency.mean() / 1e6,
          s.latency.count());
  appendf(out,
          ",\"errors\":{\"rejected\":%" PRIu64 ",\"in_doubt\":%" PRIu64 ",\"timeouts\":%" PRIu64
          ",\"transport\":%" PRIu64 ",\"connect\":%" PRIu64 ",\"reconnects\":%" PRIu64
          ",\"read_failures\":%" PRIu64 ",\"retry_after_waits\":%" PRIu64 ",\"resent\":%" PRIu64
          ",\"replayed\":%" PRIu64 ",\"status\":{",
          s.rejected, s.in_doubt, s.timeouts, s.transport_errors, s.connect_errors, s.reconnects,
          s.read_failures, s.retry_after_waits, s.resent, s.replayed);
  bool first = true;
  for (const auto& [status, n] : s.status_counts) {
    appendf(out, "%s\"%u\":%" PRIu64, first ? "" : ",", status, n);
    first = false;
  }
  out += "}}";
  append_memory_json(out, "server_before", r.server_before);
  append_memory_json(out, "server_connected", r.server_connected);
  append_memory_json(out, "server_after", r.server_after);
  if (auto per = r.server_kib_per_connection())
    appendf(out, ",\"server_kib_per_connection\":%.3f", *per);
  else
    out += ",\"server_kib_per_connection\":null";
  if (r.verified) {
    const VerifyResult& v = r.verify;
    appendf(out,
            ",\"verify\":{\"ok\":%s,\"checked\":%" PRIu64 ",\"mismatches\":%" PRIu64
            ",\"unverified\":%" PRIu64 ",\"in_doubt_requests\":%" PRIu64 ",\"messages\":[",
            v.ok() ? "true" : "false", v.checked, v.mismatches, v.unverified, v.in_doubt_requests);
    for (std::size_t i = 0; i < v.messages.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, v.messages[i]);
    }
    out += "]}";
  } else {
    out += ",\"verify\":null";
  }
  appendf(out, ",\"exit_code\":%d}\n", r.exit_code());
  return out;
}

}  // namespace metrics::loadgen
