#include "metrics/loadgen/request_builder.hpp"

#include <algorithm>
#include <charconv>

#include "detail/deflater.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/core/value_format.hpp"

namespace metrics::loadgen {
namespace {

template <typename Int>
void append_int(std::string& out, Int value) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;  // 24 bytes hold every 64-bit integer
  out.append(buf, p);
}

// {"instance":"loadgen-7","job":"loadgen"}: both values need no escaping.
void append_agent_labels_json(std::string& out, std::uint32_t agent) {
  out += "{\"instance\":\"";
  append_instance(out, agent);
  out += "\",\"job\":\"";
  out += kJob;
  out += "\"}";
}

// JSON of one slot's metric at request `seq`; with the agent's labels when
// `with_labels` (a single metric; in a batch the envelope carries them).
void append_slot_json(std::string& out, const Workload& workload, std::uint32_t agent,
                      std::size_t slot, std::uint64_t seq, bool with_labels) {
  out += "{\"id\":\"";
  append_metric_name(out, workload, agent, slot);
  switch (slot_kind(slot)) {
    case SlotKind::agent_counter:
      out += "\",\"type\":\"counter\",\"delta\":";
      append_int(out, agent_counter_delta(seq));
      break;
    case SlotKind::hot_counter:
      out += "\",\"type\":\"counter\",\"delta\":";
      append_int(out, hot_counter_delta(seq));
      break;
    case SlotKind::gauge:
      out += "\",\"type\":\"gauge\",\"value\":";
      core::append_gauge(out, gauge_value(agent, slot, seq));
      break;
  }
  if (with_labels) {
    out += ",\"labels\":";
    append_agent_labels_json(out, agent);
  }
  out += '}';
}

}  // namespace

std::string_view to_string(Mode mode) noexcept {
  switch (mode) {
    case Mode::batch:
      return "batch";
    case Mode::json:
      return "json";
    case Mode::text:
      return "text";
  }
  return "?";
}

std::optional<Mode> parse_mode(std::string_view text) noexcept {
  if (text == "batch" || text == "updates") return Mode::batch;
  if (text == "json" || text == "update") return Mode::json;
  if (text == "text") return Mode::text;
  return std::nullopt;
}

bool valid_run_id(std::string_view run_id) noexcept {
  if (run_id.size() > 64) return false;
  for (char c : run_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void append_instance(std::string& out, std::uint32_t agent) {
  out += "loadgen-";
  append_int(out, agent);
}

core::Labels agent_labels(const Workload& workload, std::uint32_t agent) {
  if (!workload.labelled()) return {};
  std::string instance;
  append_instance(instance, agent);
  return core::Labels::make({{"instance", std::move(instance)}, {"job", std::string(kJob)}});
}

void append_metric_name(std::string& out, const Workload& workload, std::uint32_t agent,
                        std::size_t slot) {
  out += workload.run_id;
  // Labelled, the instance label tells the agents apart, so the names are
  // the same for all of them, as with real agents.
  const bool own = !workload.labelled();
  switch (slot_kind(slot)) {
    case SlotKind::agent_counter:
      if (own) {
        out += 'a';
        append_int(out, agent);
        out += "_c";
      } else {
        out += 'c';
      }
      break;
    case SlotKind::hot_counter:
      out += "loadgen_hot";
      break;
    case SlotKind::gauge:
      if (own) {
        out += 'a';
        append_int(out, agent);
        out += "_g";
      } else {
        out += 'g';
      }
      append_int(out, slot - 2);
      break;
  }
}

std::string metric_name(const Workload& workload, std::uint32_t agent, std::size_t slot) {
  std::string out;
  append_metric_name(out, workload, agent, slot);
  return out;
}

std::vector<ReadTarget> read_plan(const Workload& workload, bool baseline, bool with_shared) {
  std::vector<ReadTarget> plan;
  // Only counters have a baseline: a gauge is overwritten by the run.
  const std::size_t slots =
      baseline ? std::min<std::size_t>(workload.batch_size, 2) : workload.batch_size;
  for (Scope scope : {Scope::series, Scope::classic}) {
    for (std::size_t slot = 0; slot < slots; ++slot) {
      const ReadTarget t{scope, slot};
      if (!shared_target(workload, t) || with_shared) plan.push_back(t);
    }
  }
  return plan;
}

SlotRange slots_of(const Workload& workload, std::uint64_t seq) noexcept {
  if (workload.batch_size == 0) return {};
  if (workload.mode == Mode::batch) return {0, workload.batch_size};
  return {static_cast<std::size_t>((seq - 1) % workload.batch_size), 1};
}

RequestBuilder::RequestBuilder(Workload workload, std::string host, std::string key, bool gzip)
    : workload_(std::move(workload)),
      host_(std::move(host)),
      key_(std::move(key)),
      gzip_(gzip && workload_.mode != Mode::text),
      deflater_(gzip_ ? std::make_unique<Deflater>() : nullptr) {}

RequestBuilder::~RequestBuilder() = default;

void RequestBuilder::build_plain_body(std::uint32_t agent, std::uint64_t seq,
                                      std::string& out) const {
  out.clear();
  const SlotRange slots = slots_of(workload_, seq);
  switch (workload_.mode) {
    case Mode::batch: {
      const bool labelled = workload_.labelled();
      if (labelled) {
        out += "{\"labels\":";
        append_agent_labels_json(out, agent);
        out += ",\"metrics\":";
      }
      out += '[';
      for (std::size_t s = slots.first; s < slots.first + slots.count; ++s) {
        if (s != slots.first) out += ',';
        append_slot_json(out, workload_, agent, s, seq, false);
      }
      out += ']';
      if (labelled) out += '}';
      break;
    }
    case Mode::json:
      if (slots.count)
        append_slot_json(out, workload_, agent, slots.first, seq, workload_.labelled());
      break;
    case Mode::text:
      break;
  }
}

void append_idempotency_key(std::string& out, const Workload& workload, std::uint32_t agent,
                            std::uint64_t seq) {
  out += workload.run_id;
  out += 'k';
  append_int(out, agent);
  out += '-';
  append_int(out, seq);
}

void RequestBuilder::append_head(std::string& head, std::string_view target, std::string_view body,
                                 std::uint32_t agent, std::uint64_t seq) const {
  head += "POST ";
  head += target;
  head += " HTTP/1.1\r\nHost: ";
  head += host_;
  if (workload_.mode != Mode::text) head += "\r\nContent-Type: application/json";
  head += "\r\nContent-Length: ";
  append_int(head, body.size());
  if (gzip_) head += "\r\nContent-Encoding: gzip";
  if (!authorization_.empty()) {
    head += "\r\nAuthorization: ";
    head += authorization_;
  }
  if (workload_.idempotency_keys) {
    head += "\r\nIdempotency-Key: ";
    append_idempotency_key(head, workload_, agent, seq);
  }
  if (!key_.empty()) {
    // Over the bytes on the wire, i.e. after compression (API.md, Signing).
    head += "\r\nHashSHA256: ";
    head += core::hmac_sha256_hex(key_, body);
  }
  head += "\r\n\r\n";
}

void RequestBuilder::build(std::uint32_t agent, std::uint64_t seq, RequestBytes& out) {
  out.head.clear();
  if (workload_.mode == Mode::text) {
    out.body.clear();
    const SlotRange slots = slots_of(workload_, seq);
    scratch_.clear();
    if (slots.count) {
      const std::size_t slot = slots.first;
      const bool gauge = slot_kind(slot) == SlotKind::gauge;
      scratch_ += gauge ? "/update/gauge/" : "/update/counter/";
      append_metric_name(scratch_, workload_, agent, slot);
      scratch_ += '/';
      if (gauge)
        core::append_gauge(scratch_, gauge_value(agent, slot, seq));
      else
        append_int(scratch_, slot == 0 ? agent_counter_delta(seq) : hot_counter_delta(seq));
    }
    append_head(out.head, scratch_, out.body, agent, seq);
    return;
  }
  if (gzip_) {
    build_plain_body(agent, seq, scratch_);
    deflater_->compress(scratch_, out.body);
  } else {
    build_plain_body(agent, seq, out.body);
  }
  append_head(out.head, workload_.mode == Mode::batch ? "/updates/" : "/update/", out.body, agent,
              seq);
}

void RequestBuilder::build_read(std::uint32_t agent, ReadTarget target, std::string& out) const {
  // {"id":"...","type":"...","labels":{...}}: the labels (even {}) make it a
  // series read, their absence a classic one (API.md Part 2).
  std::string body = "{\"id\":\"";
  append_metric_name(body, workload_, agent, target.slot);
  body += slot_kind(target.slot) == SlotKind::gauge ? "\",\"type\":\"gauge\""
                                                    : "\",\"type\":\"counter\"";
  if (target.scope == Scope::series) {
    body += ",\"labels\":";
    if (workload_.labelled() && !shared_target(workload_, target))
      append_agent_labels_json(body, agent);
    else
      body += "{}";
  }
  body += '}';
  out += "POST /value/ HTTP/1.1\r\nHost: ";
  out += host_;
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  append_int(out, body.size());
  if (!authorization_.empty()) {
    out += "\r\nAuthorization: ";
    out += authorization_;
  }
  out += "\r\n\r\n";
  out += body;
}

void RequestBuilder::build_reads(std::uint32_t agent, std::span<const ReadTarget> targets,
                                 std::string& out) const {
  for (const ReadTarget& t : targets)
    build_read(agent, t, out);
}

}  // namespace metrics::loadgen
