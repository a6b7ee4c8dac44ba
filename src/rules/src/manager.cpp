#include "metrics/rules/manager.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "json_out.hpp"
#include "metrics/query/error.hpp"

namespace metrics::rules {

namespace json = boost::json;
using detail::json_labels;
using detail::json_number;
using detail::json_string;

namespace {

constexpr std::int64_t kResolvedRetentionMs = 15 * 60 * 1000;  // Prometheus's resolvedRetention
const double kStaleNaN = std::bit_cast<double>(std::uint64_t{0x7ff0000000000002ULL});

struct Alert {
  query::LabelSet labels;
  query::LabelSet annotations;
  AlertState state = AlertState::inactive;
  std::int64_t active_at = 0;
  std::int64_t fired_at = 0;
  std::int64_t resolved_at = 0;
  std::int64_t last_sent_at = 0;
  std::int64_t valid_until = 0;
  std::int64_t keep_firing_since = 0;
  double value = 0;
};

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 14695981039346656037ULL) {
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

struct Rule {
  RuleSpec spec;
  std::map<std::string, Alert> active;                     // by key_of(labels)
  std::map<std::string, query::LabelSet> previous_series;  // written at the last evaluation
  std::string health = "unknown";
  std::string last_error;
  double evaluation_seconds = 0;
  std::int64_t last_evaluation = 0;  // ms; 0: never
  bool evaluated = false;
};

struct Manager::Group {
  GroupSpec spec;  // its rules moved into `rules`
  std::vector<Rule> rules;
  std::int64_t interval_ms = 0;
  std::int64_t next_ms = 0;  // the next scheduled evaluation
  double evaluation_seconds = 0;
  std::int64_t last_evaluation = 0;
  bool evaluated = false;
  // The group's children of the telemetry families (null: not measured).
  telemetry::Histogram* rule_seconds = nullptr;
  telemetry::Histogram* group_seconds = nullptr;
  telemetry::Counter* evaluations = nullptr;
  telemetry::Counter* failures = nullptr;
};

std::string_view state_name(AlertState s) noexcept {
  switch (s) {
    case AlertState::pending:
      return "pending";
    case AlertState::firing:
      return "firing";
    default:
      return "inactive";
  }
}

std::string fingerprint(const query::LabelSet& labels) {
  std::uint64_t h = 14695981039346656037ULL;
  // Sorted by name (LabelSet is); each name and value followed by 0xFF.
  for (const auto& l : labels) {
    h = fnv1a(l.name, h);
    h = fnv1a("\xff", h);
    h = fnv1a(l.value, h);
    h = fnv1a("\xff", h);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string format_rfc3339(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  std::int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  // Go's zero time.Time.
  if (ms == 0) return "0001-01-01T00:00:00Z";
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03lld", static_cast<long long>(frac));
    std::string fs = f;
    while (fs.back() == '0')
      fs.pop_back();
    out += fs;
  }
  return out + "Z";
}

std::string table_link(std::string_view expr) {
  // url.QueryEscape.
  std::string e;
  for (const char ch : expr) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      e += ch;
    } else if (c == ' ') {
      e += '+';
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      e += buf;
    }
  }
  return "/graph?g0.expr=" + e + "&g0.tab=1";
}

Manager::Manager(const query::Queryable& queryable, SampleSink* sink, ManagerOptions options)
    : queryable_(queryable), sink_(sink), options_(std::move(options)), engine_(options_.engine) {
  if (!options_.clock) options_.clock = core::real_clock();
}

Manager::~Manager() {
  stop();
}

namespace {

// Prometheus's prometheus_rule_evaluation_duration_seconds and
// prometheus_rule_group_duration_seconds are summaries without labels; ours
// are histograms (they aggregate across replicas) with the group's label,
// like its prometheus_rule_evaluations_total{rule_group}.
void instrument(Manager::Group& g, telemetry::Registry& registry) {
  const std::string key = g.spec.file + ";" + g.spec.name;
  const std::vector<std::string> labels{"rule_group"};
  g.rule_seconds = &registry
                        .histogram("metrics_server_rule_evaluation_duration_seconds",
                                   "The duration of one rule's evaluation.", labels,
                                   telemetry::latency_buckets())
                        .with({key});
  g.group_seconds = &registry
                         .histogram("metrics_server_rule_group_duration_seconds",
                                    "The duration of one evaluation of a rule group.", labels,
                                    telemetry::latency_buckets())
                         .with({key});
  g.evaluations =
      &registry.counter("metrics_server_rule_evaluations_total", "Rule evaluations.", labels)
           .with({key});
  g.failures = &registry
                    .counter("metrics_server_rule_evaluation_failures_total",
                             "Rule evaluations that failed.", labels)
                    .with({key});
}

}  // namespace

std::int64_t Manager::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             options_.clock->system_now().time_since_epoch())
      .count();
}

void Manager::load(std::vector<GroupSpec> groups) {
  std::vector<std::unique_ptr<Group>> fresh;
  for (auto& spec : groups) {
    auto g = std::make_unique<Group>();
    g->interval_ms =
        spec.interval.count() > 0 ? spec.interval.count() : options_.evaluation_interval.count();
    if (g->interval_ms <= 0) g->interval_ms = 15'000;
    for (auto& r : spec.rules) {
      Rule rule;
      rule.spec = std::move(r);
      g->rules.push_back(std::move(rule));
    }
    spec.rules.clear();
    g->spec = std::move(spec);
    if (options_.telemetry) instrument(*g, *options_.telemetry);
    fresh.push_back(std::move(g));
  }
  std::lock_guard lock(mu_);
  // Carry the state over for rules that stay (Prometheus's CopyState).
  for (auto& g : fresh) {
    for (auto& old : groups_) {
      if (old->spec.file != g->spec.file || old->spec.name != g->spec.name) continue;
      std::map<std::string, std::vector<Rule*>> by_name;
      for (auto& r : old->rules)
        by_name[r.spec.name].push_back(&r);
      std::map<std::string, std::size_t> seen;
      for (auto& r : g->rules) {
        const std::size_t i = seen[r.spec.name]++;
        const auto it = by_name.find(r.spec.name);
        if (it == by_name.end() || i >= it->second.size()) continue;
        Rule& from = *it->second[i];
        if (from.spec.kind != r.spec.kind) continue;
        r.active = std::move(from.active);
        r.previous_series = std::move(from.previous_series);
        r.health = from.health;
        r.last_error = from.last_error;
        r.evaluation_seconds = from.evaluation_seconds;
        r.last_evaluation = from.last_evaluation;
        r.evaluated = from.evaluated;
      }
      g->next_ms = old->next_ms;
      g->evaluated = old->evaluated;
      g->last_evaluation = old->last_evaluation;
      g->evaluation_seconds = old->evaluation_seconds;
    }
  }
  groups_ = std::move(fresh);
  reloaded_ = true;
  dirty_ = true;
  cv_.notify_all();
}

void Manager::add_notifier(std::shared_ptr<Notifier> notifier) {
  std::lock_guard lock(mu_);
  notifiers_.push_back(std::move(notifier));
}

std::size_t Manager::group_count() const {
  std::lock_guard lock(mu_);
  return groups_.size();
}

std::size_t Manager::rule_count() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& g : groups_)
    n += g->rules.size();
  return n;
}

namespace {

query::Vector to_vector(query::Result r) {
  if (auto* v = std::get_if<query::Vector>(&r)) return std::move(*v);
  if (const auto* s = std::get_if<query::Scalar>(&r)) return {query::Sample{{}, s->v, s->t}};
  throw std::runtime_error("rule result is not a vector or scalar");
}

GoMap to_map(const query::LabelSet& labels) {
  GoMap m;
  for (const auto& l : labels)
    m[l.name] = l.value;
  return m;
}

}  // namespace

void Manager::evaluate_group(Group& g, std::int64_t t, std::vector<std::vector<NotifyAlert>>& out) {
  const auto group_start = std::chrono::steady_clock::now();
  for (Rule& rule : g.rules) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<OutputSample> samples;
    bool ok = false;
    try {
      query::Vector vec = to_vector(engine_.instant(queryable_, *rule.spec.parsed, t));
      if (rule.spec.kind == RuleKind::recording) {
        std::set<std::string> seen;
        for (auto& s : vec) {
          query::LabelSet labels = std::move(s.metric);
          query::set(labels, query::kMetricName, rule.spec.name);
          for (const auto& [k, v] : rule.spec.labels)
            query::set(labels, k, v);
          if (!seen.insert(query::key_of(labels)).second)
            throw std::runtime_error(
                "vector contains metrics with the same labelset after applying rule labels");
          samples.push_back({std::move(labels), t, s.v});
        }
        if (g.spec.limit > 0 && static_cast<std::int64_t>(samples.size()) > g.spec.limit)
          throw std::runtime_error("exceeded limit " + std::to_string(g.spec.limit) + " with " +
                                   std::to_string(samples.size()) + " series");
      } else {
        std::map<std::string, Alert> current;
        for (const auto& s : vec) {
          TemplateData data{.labels = to_map(s.metric),
                            .external_labels = options_.external_labels,
                            .external_url = options_.external_url,
                            .value = s.v};
          query::LabelSet labels = s.metric;
          query::remove(labels, query::kMetricName);
          for (const auto& [k, tmpl] : rule.spec.label_templates)
            query::set(labels, k, tmpl.expand_or_error(data));
          query::set(labels, "alertname", rule.spec.name);
          query::LabelSet annotations;
          for (const auto& [k, tmpl] : rule.spec.annotation_templates)
            annotations.push_back({k, tmpl.expand_or_error(data)});
          std::string key = query::key_of(labels);
          if (current.contains(key))
            throw std::runtime_error(
                "vector contains metrics with the same labelset after applying alert labels");
          Alert a;
          a.labels = std::move(labels);
          a.annotations = std::move(annotations);
          a.active_at = t;
          a.state = AlertState::pending;
          a.value = s.v;
          current.emplace(std::move(key), std::move(a));
        }
        for (auto& [key, a] : current) {
          const auto it = rule.active.find(key);
          if (it != rule.active.end() && it->second.state != AlertState::inactive) {
            it->second.value = a.value;
            it->second.annotations = std::move(a.annotations);
            continue;
          }
          rule.active[key] = std::move(a);
          dirty_ = true;
        }
        const std::int64_t hold = rule.spec.for_duration.count();
        const std::int64_t keep_for = rule.spec.keep_firing_for.count();
        std::int64_t active_count = 0;
        for (auto it = rule.active.begin(); it != rule.active.end();) {
          Alert& a = it->second;
          if (!current.contains(it->first)) {
            bool keep_firing = false;
            if (a.state == AlertState::firing && keep_for > 0) {
              if (a.keep_firing_since == 0) a.keep_firing_since = t;
              if (t - a.keep_firing_since < keep_for) keep_firing = true;
            }
            if (a.state == AlertState::pending ||
                (a.resolved_at != 0 && t - a.resolved_at > kResolvedRetentionMs)) {
              it = rule.active.erase(it);
              dirty_ = true;
              continue;
            }
            if (a.state != AlertState::inactive && !keep_firing) {
              a.state = AlertState::inactive;
              a.resolved_at = t;
              dirty_ = true;
            }
            if (!keep_firing) {
              ++it;
              continue;
            }
          } else {
            a.keep_firing_since = 0;
          }
          ++active_count;
          if (a.state == AlertState::pending && t - a.active_at >= hold) {
            a.state = AlertState::firing;
            a.fired_at = t;
            dirty_ = true;
          }
          query::LabelSet alerts = a.labels;
          query::set(alerts, query::kMetricName, "ALERTS");
          query::set(alerts, "alertstate", state_name(a.state));
          samples.push_back({std::move(alerts), t, 1});
          query::LabelSet for_state = a.labels;
          query::set(for_state, query::kMetricName, "ALERTS_FOR_STATE");
          samples.push_back({std::move(for_state), t,
                             static_cast<double>(a.active_at >= 0 ? a.active_at / 1000
                                                                  : (a.active_at - 999) / 1000)});
          ++it;
        }
        if (g.spec.limit > 0 && active_count > g.spec.limit) {
          rule.active.clear();
          dirty_ = true;
          throw std::runtime_error("exceeded limit of " + std::to_string(g.spec.limit) + " with " +
                                   std::to_string(active_count) + " alerts");
        }
        // What needs sending (Prometheus's sendAlerts / needsSending).
        std::vector<NotifyAlert> send;
        const std::int64_t resend = options_.resend_delay.count();
        const std::int64_t delta = std::max(resend, g.interval_ms);
        for (auto& [key, a] : rule.active) {
          if (a.state == AlertState::pending) continue;
          const bool needs = a.resolved_at > a.last_sent_at || a.last_sent_at + resend < t;
          if (!needs) continue;
          a.last_sent_at = t;
          a.valid_until = t + 4 * delta;
          NotifyAlert n;
          n.labels = a.labels;
          for (const auto& [k, v] : options_.external_labels) {
            if (query::get(n.labels, k).empty()) query::set(n.labels, k, v);
          }
          n.annotations = a.annotations;
          n.starts_at_ms = a.fired_at;
          n.resolved = a.resolved_at != 0;
          n.ends_at_ms = n.resolved ? a.resolved_at : a.valid_until;
          n.generator_url = options_.external_url + table_link(rule.spec.expr);
          send.push_back(std::move(n));
        }
        if (!send.empty()) out.push_back(std::move(send));
      }
      ok = true;
      rule.health = "ok";
      rule.last_error.clear();
    } catch (const std::exception& e) {
      rule.health = "err";
      rule.last_error = e.what();
    }
    rule.evaluation_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rule.last_evaluation = t;
    rule.evaluated = true;
    if (g.rule_seconds != nullptr) {
      g.rule_seconds->observe(rule.evaluation_seconds);
      g.evaluations->inc();
      if (!ok) g.failures->inc();
    }
    if (!ok) continue;
    std::map<std::string, query::LabelSet> returned;
    for (const auto& s : samples)
      returned.emplace(query::key_of(s.labels), s.labels);
    for (const auto& [key, labels] : rule.previous_series) {
      if (!returned.contains(key)) samples.push_back({labels, t, kStaleNaN});
    }
    rule.previous_series = std::move(returned);
    if (sink_ != nullptr && !samples.empty()) sink_->append(samples);
  }
  g.evaluation_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - group_start).count();
  g.last_evaluation = t;
  g.evaluated = true;
  if (g.group_seconds != nullptr) g.group_seconds->observe(g.evaluation_seconds);
}

void Manager::evaluate_all(std::int64_t t_ms) {
  std::vector<std::vector<NotifyAlert>> sends;
  std::vector<std::shared_ptr<Notifier>> notifiers;
  {
    std::lock_guard lock(mu_);
    for (auto& g : groups_)
      evaluate_group(*g, t_ms, sends);
    notifiers = notifiers_;
  }
  for (const auto& n : notifiers) {
    for (const auto& batch : sends)
      n->notify(batch);
  }
}

void Manager::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  reloaded_ = true;
  thread_ = std::thread([this] {
    // Named for top -H and ps; below the I/O threads (nice +10), so that on
    // a machine with few cores an evaluation cycle takes the CPU the
    // requests leave and does not delay them. Lowering one's own priority
    // needs no privilege; a failure leaves it as it was.
    ::pthread_setname_np(::pthread_self(), "rules");
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kEvaluationNice);
    run();
  });
}

void Manager::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  bool save = false;
  {
    std::lock_guard lock(mu_);
    save = dirty_ && !options_.state_file.empty();
  }
  if (save) (void)save_state();
}

void Manager::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (reloaded_) {
      reloaded_ = false;
      const std::int64_t now = now_ms();
      for (auto& g : groups_) {
        if (g->next_ms > now && g->next_ms - now <= g->interval_ms) continue;
        // Prometheus's EvalTimestamp: a per-group offset within the interval.
        const auto offset = static_cast<std::int64_t>(fnv1a(g->spec.file + ";" + g->spec.name) %
                                                      static_cast<std::uint64_t>(g->interval_ms));
        const std::int64_t adj = now - offset;
        const std::int64_t base = adj - (adj % g->interval_ms);
        g->next_ms = base + offset + g->interval_ms;
      }
    }
    Group* due = nullptr;
    for (auto& g : groups_) {
      if (due == nullptr || g->next_ms < due->next_ms) due = g.get();
    }
    if (due == nullptr) {
      cv_.wait(lock, [&] { return stopping_ || reloaded_; });
      continue;
    }
    const std::int64_t wait = due->next_ms - now_ms();
    if (wait > 0) {
      const auto deadline = options_.clock->steady_now() + std::chrono::milliseconds(wait);
      if (options_.clock->wait_until(cv_, lock, deadline, [&] { return stopping_ || reloaded_; }))
        continue;
      if (now_ms() < due->next_ms) continue;
    }
    std::vector<std::vector<NotifyAlert>> sends;
    const std::int64_t t = due->next_ms;
    evaluate_group(*due, t, sends);
    due->next_ms += due->interval_ms;
    const std::int64_t now = now_ms();
    if (due->next_ms <= now) {
      // Missed evaluations are skipped, as Prometheus does.
      due->next_ms += ((now - due->next_ms) / due->interval_ms + 1) * due->interval_ms;
    }
    auto notifiers = notifiers_;
    const bool save = dirty_ && !options_.state_file.empty();
    lock.unlock();
    for (const auto& n : notifiers) {
      for (const auto& batch : sends)
        n->notify(batch);
    }
    if (save) (void)save_state();
    lock.lock();
  }
}

// --- the views --------------------------------------------------------------

namespace {

void alert_json(std::string& out, const Alert& a) {
  out += "{\"labels\":";
  json_labels(out, a.labels);
  out += ",\"annotations\":";
  json_labels(out, a.annotations);
  out += ",\"state\":";
  json_string(out, state_name(a.state));
  out += ",\"activeAt\":";
  json_string(out, format_rfc3339(a.active_at));
  out += ",\"value\":";
  json_string(out, go_format_float(a.value, 'e', -1));
  out += '}';
}

}  // namespace

std::string Manager::rules_json(std::string_view type) const {
  std::lock_guard lock(mu_);
  std::string out = "{\"groups\":[";
  bool first_group = true;
  for (const auto& g : groups_) {
    std::string rules;
    bool first = true;
    for (const Rule& r : g->rules) {
      const bool alerting = r.spec.kind == RuleKind::alerting;
      if ((type == "alert" && !alerting) || (type == "record" && alerting)) continue;
      if (!first) rules += ',';
      first = false;
      rules += '{';
      if (alerting) {
        AlertState max = AlertState::inactive;
        for (const auto& [k, a] : r.active)
          max = std::max(max, a.state);
        rules += "\"state\":";
        json_string(rules, state_name(max));
        rules += ',';
      }
      rules += "\"name\":";
      json_string(rules, r.spec.name);
      rules += ",\"query\":";
      json_string(rules, r.spec.expr);
      query::LabelSet labels;
      for (const auto& [k, v] : r.spec.labels)
        labels.push_back({k, v});
      if (alerting) {
        rules += ",\"duration\":";
        json_number(rules, static_cast<double>(r.spec.for_duration.count()) / 1000);
        rules += ",\"keepFiringFor\":";
        json_number(rules, static_cast<double>(r.spec.keep_firing_for.count()) / 1000);
        rules += ",\"labels\":";
        json_labels(rules, labels);
        query::LabelSet annotations;
        for (const auto& [k, v] : r.spec.annotations)
          annotations.push_back({k, v});
        rules += ",\"annotations\":";
        json_labels(rules, annotations);
        rules += ",\"alerts\":[";
        bool first_alert = true;
        for (const auto& [k, a] : r.active) {
          if (a.resolved_at != 0) continue;
          if (!first_alert) rules += ',';
          first_alert = false;
          alert_json(rules, a);
        }
        rules += ']';
      } else if (!labels.empty()) {
        rules += ",\"labels\":";
        json_labels(rules, labels);
      }
      rules += ",\"health\":";
      json_string(rules, r.health);
      if (!r.last_error.empty()) {
        rules += ",\"lastError\":";
        json_string(rules, r.last_error);
      }
      rules += ",\"evaluationTime\":";
      json_number(rules, r.evaluation_seconds);
      rules += ",\"lastEvaluation\":";
      json_string(rules, r.evaluated ? format_rfc3339(r.last_evaluation) : format_rfc3339(0));
      rules += ",\"type\":";
      json_string(rules, alerting ? "alerting" : "recording");
      rules += '}';
    }
    if (!type.empty() && first) continue;  // Prometheus leaves out groups the filter empties
    if (!first_group) out += ',';
    first_group = false;
    out += "{\"name\":";
    json_string(out, g->spec.name);
    out += ",\"file\":";
    json_string(out, g->spec.file);
    out += ",\"rules\":[" + rules + "]";
    out += ",\"interval\":";
    json_number(out, static_cast<double>(g->interval_ms) / 1000);
    out += ",\"limit\":" + std::to_string(g->spec.limit);
    out += ",\"evaluationTime\":";
    json_number(out, g->evaluation_seconds);
    out += ",\"lastEvaluation\":";
    json_string(out, g->evaluated ? format_rfc3339(g->last_evaluation) : format_rfc3339(0));
    out += '}';
  }
  return out + "]}";
}

std::string Manager::alerts_json() const {
  std::lock_guard lock(mu_);
  std::string out = "{\"alerts\":[";
  bool first = true;
  for (const auto& g : groups_) {
    for (const Rule& r : g->rules) {
      for (const auto& [k, a] : r.active) {
        if (a.resolved_at != 0) continue;
        if (!first) out += ',';
        first = false;
        alert_json(out, a);
      }
    }
  }
  return out + "]}";
}

std::vector<AlertView> Manager::alerts() const {
  std::lock_guard lock(mu_);
  std::vector<AlertView> out;
  for (const auto& g : groups_) {
    for (const Rule& r : g->rules) {
      for (const auto& [k, a] : r.active) {
        out.push_back({g->spec.name, r.spec.name, a.labels, a.annotations, a.state, a.active_at,
                       a.fired_at, a.resolved_at, a.keep_firing_since, a.value});
      }
    }
  }
  return out;
}

// --- the state file -------------------------------------------------------------

namespace {

json::object labels_object(const query::LabelSet& labels) {
  json::object o;
  for (const auto& l : labels)
    o[l.name] = l.value;
  return o;
}

query::LabelSet labels_from(const json::value& v) {
  query::LabelSet out;
  if (const auto* o = v.if_object()) {
    for (const auto& [k, val] : *o) {
      if (const auto* s = val.if_string()) out.push_back({std::string(k), std::string(*s)});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::int64_t int_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (const auto* i = v->if_int64()) return *i;
  if (const auto* u = v->if_uint64()) return static_cast<std::int64_t>(*u);
  return 0;
}

}  // namespace

bool Manager::save_state() {
  std::string text;
  {
    std::lock_guard lock(mu_);
    if (options_.state_file.empty()) return false;
    json::array alerts;
    for (const auto& g : groups_) {
      for (const Rule& r : g->rules) {
        for (const auto& [k, a] : r.active) {
          if (a.state == AlertState::inactive) continue;
          json::object o;
          o["file"] = g->spec.file;
          o["group"] = g->spec.name;
          o["rule"] = r.spec.name;
          o["labels"] = labels_object(a.labels);
          o["annotations"] = labels_object(a.annotations);
          o["state"] = std::string(state_name(a.state));
          o["active_at"] = a.active_at;
          o["fired_at"] = a.fired_at;
          o["keep_firing_since"] = a.keep_firing_since;
          o["last_sent_at"] = a.last_sent_at;
          o["value"] = go_format_float(a.value, 'e', -1);
          alerts.push_back(std::move(o));
        }
      }
    }
    json::object root;
    root["version"] = 1;
    root["saved_at"] = now_ms();
    root["alerts"] = std::move(alerts);
    text = json::serialize(root);
    dirty_ = false;
  }
  const std::filesystem::path path(options_.state_file);
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text << '\n';
    f.flush();
    if (!f) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

bool Manager::restore_state() {
  if (options_.state_file.empty()) return false;
  std::ifstream f(options_.state_file, std::ios::binary);
  if (!f) return false;
  std::stringstream buf;
  buf << f.rdbuf();
  json::value root;
  try {
    root = json::parse(buf.str());
  } catch (const std::exception&) {
    return false;
  }
  const auto* obj = root.if_object();
  if (obj == nullptr) return false;
  const std::int64_t saved_at = int_of(*obj, "saved_at");
  const std::int64_t now = now_ms();
  const std::int64_t downtime = now - saved_at;
  if (downtime < 0 || downtime > options_.for_outage_tolerance.count()) return true;
  const auto* alerts = obj->if_contains("alerts");
  if (alerts == nullptr || !alerts->is_array()) return false;
  std::lock_guard lock(mu_);
  for (const auto& item : alerts->as_array()) {
    const auto* o = item.if_object();
    if (o == nullptr) continue;
    const auto str = [&](std::string_view key) -> std::string {
      const auto* v = o->if_contains(key);
      return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    for (auto& g : groups_) {
      if (g->spec.file != str("file") || g->spec.name != str("group")) continue;
      for (Rule& r : g->rules) {
        if (r.spec.kind != RuleKind::alerting || r.spec.name != str("rule")) continue;
        Alert a;
        a.labels = labels_from(o->at("labels"));
        if (const auto* an = o->if_contains("annotations")) a.annotations = labels_from(*an);
        const std::string state = str("state");
        a.value = std::strtod(str("value").c_str(), nullptr);
        a.active_at = int_of(*o, "active_at");
        a.keep_firing_since = int_of(*o, "keep_firing_since");
        if (state == "firing") {
          a.state = AlertState::firing;
          a.fired_at = int_of(*o, "fired_at");
        } else if (state == "pending") {
          // The time it already waited counts; the downtime does not.
          a.state = AlertState::pending;
          a.active_at = now - (saved_at - a.active_at);
        } else {
          continue;
        }
        r.active[query::key_of(a.labels)] = std::move(a);
        break;
      }
    }
  }
  return true;
}

}  // namespace metrics::rules
