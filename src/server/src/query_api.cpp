// The Prometheus HTTP API: parameters as web/api/v1/api.go parses them,
// queries on the QueryApi's pool over a HistoryQueryable, answers and errors
// in Prometheus 2.42's JSON.
#include "metrics/server/query_api.hpp"

#include <algorithm>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "metrics/core/text.hpp"
#include "metrics/query/ast.hpp"
#include "metrics/query/json.hpp"
#include "metrics/server/history_queryable.hpp"
#include "metrics/server/service.hpp"

namespace metrics::server {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using Outcome = QueryApi::Outcome;

namespace promapi {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Go's int64(f) on amd64: NaN and out-of-range values become MinInt64.
std::int64_t go_int64(double f) {
  if (std::isnan(f) || f >= 9223372036854775808.0 || f < -9223372036854775808.0)
    return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(f);
}

// Two's complement wrap-around, as Go's int64 arithmetic.
std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}
std::int64_t wrap_mul(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b));
}

// Go's %q of a string (strconv.Quote), for the ASCII cases that matter.
std::string quote(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

int digits(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (i >= s.size() || !is_digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// time.Parse(time.RFC3339Nano, s) then timestamp.FromTime.
std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
  const int year = digits(s, 0, 4);
  if (year < 0 || s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':')
    return std::nullopt;
  const int month = digits(s, 5, 2), day = digits(s, 8, 2);
  const int hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  if (month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 59)
    return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int month_days = kDays[month - 1] + (month == 2 && leap(year) ? 1 : 0);
  if (day > month_days) return std::nullopt;
  std::size_t i = 19;
  std::int64_t nsec = 0;
  if (i + 1 < s.size() && (s[i] == '.' || s[i] == ',') && is_digit(s[i + 1])) {
    ++i;
    int n = 0;
    while (i < s.size() && is_digit(s[i])) {
      if (n < 9) {
        nsec = nsec * 10 + (s[i] - '0');
        ++n;
      }
      ++i;
    }
    for (; n < 9; ++n)
      nsec *= 10;
  }
  std::int64_t offset = 0;
  if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
    if (oh < 0 || om < 0 || i + 3 >= s.size() || s[i + 3] != ':') return std::nullopt;
    offset = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const std::int64_t secs =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset;
  return secs * 1000 + nsec / 1'000'000;
}

// model.ParseDuration, in milliseconds.
bool parse_prom_duration(std::string_view s, std::int64_t& ms) {
  if (s == "0") {
    ms = 0;
    return true;
  }
  static constexpr std::pair<std::string_view, std::int64_t> units[] = {
      {"y", 365LL * 24 * 3600 * 1000},
      {"w", 7LL * 24 * 3600 * 1000},
      {"d", 24LL * 3600 * 1000},
      {"h", 3600LL * 1000},
      {"m", 60LL * 1000},
      {"s", 1000},
      {"ms", 1}};
  constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / 1'000'000;
  std::size_t i = 0, next_unit = 0;
  std::int64_t total = 0;
  if (s.empty()) return false;
  while (i < s.size()) {
    const std::size_t start = i;
    while (i < s.size() && is_digit(s[i]))
      ++i;
    if (i == start) return false;
    const std::string_view num = s.substr(start, i - start);
    const std::size_t ustart = i;
    while (i < s.size() && !is_digit(s[i]))
      ++i;
    const std::string_view unit = s.substr(ustart, i - ustart);
    std::size_t u = next_unit;
    while (u < std::size(units) && units[u].first != unit)
      ++u;
    if (u == std::size(units)) return false;
    next_unit = u + 1;
    std::int64_t n = 0;
    for (char c : num) {
      if (n > kMaxMs) return false;
      n = n * 10 + (c - '0');
    }
    if (n > kMaxMs / units[u].second) return false;
    total += n * units[u].second;
    if (total > kMaxMs) return false;
  }
  ms = total;
  return true;
}

}  // namespace

bool parse_go_float(std::string_view s, double& out) {
  std::string_view t = s;
  bool negative = false;
  bool sign = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    sign = true;
    t.remove_prefix(1);
  }
  if (iequal(t, "inf") || iequal(t, "infinity")) {
    out = negative ? -std::numeric_limits<double>::infinity()
                   : std::numeric_limits<double>::infinity();
    return true;
  }
  if (!sign && iequal(t, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  std::size_t i = 0;
  std::size_t mantissa = 0;
  if (t.size() >= 2 && t[0] == '0' && lower(t[1]) == 'x') {
    i = 2;
    while (i < t.size() && is_hex(t[i])) {
      ++i;
      ++mantissa;
    }
    if (i < t.size() && t[i] == '.') {
      ++i;
      while (i < t.size() && is_hex(t[i])) {
        ++i;
        ++mantissa;
      }
    }
    if (mantissa == 0 || i >= t.size() || lower(t[i]) != 'p') return false;
  } else {
    while (i < t.size() && is_digit(t[i])) {
      ++i;
      ++mantissa;
    }
    if (i < t.size() && t[i] == '.') {
      ++i;
      while (i < t.size() && is_digit(t[i])) {
        ++i;
        ++mantissa;
      }
    }
    if (mantissa == 0) return false;
  }
  if (i < t.size() && (lower(t[i]) == 'e' || lower(t[i]) == 'p')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    const std::size_t start = i;
    while (i < t.size() && is_digit(t[i]))
      ++i;
    if (i == start) return false;
  }
  if (i != t.size()) return false;
  const std::string copy(s);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return false;
  if (errno == ERANGE && std::isinf(v)) return false;  // Go: "value out of range"
  out = v;
  return true;
}

std::int64_t parse_time(std::string_view text) {
  double t = 0;
  if (parse_go_float(text, t)) {
    double whole = 0;
    double frac = std::isinf(t) ? std::numeric_limits<double>::quiet_NaN() : std::modf(t, &whole);
    if (std::isinf(t)) whole = t;
    frac = std::round(frac * 1000) / 1000;
    std::int64_t sec = go_int64(whole);
    std::int64_t nsec = go_int64(frac * 1e9);
    // time.Unix's normalisation of nsec into [0, 1e9).
    if (nsec < 0 || nsec >= 1'000'000'000) {
      const std::int64_t n = nsec / 1'000'000'000;
      sec = wrap_add(sec, n);
      nsec -= n * 1'000'000'000;
      if (nsec < 0) {
        nsec += 1'000'000'000;
        sec = wrap_add(sec, -1);
      }
    }
    return wrap_add(wrap_mul(sec, 1000), nsec / 1'000'000);
  }
  if (auto ms = parse_rfc3339(text)) return *ms;
  if (text == "-292273086-05-16T16:47:06Z") return kMinTimeMs;
  if (text == "292277025-08-18T07:12:54.999999999Z") return kMaxTimeMs;
  throw ParamError("cannot parse " + quote(text) + " to a valid timestamp");
}

std::int64_t parse_duration_ns(std::string_view text) {
  double d = 0;
  if (parse_go_float(text, d)) {
    const double ts = d * 1e9;
    if (ts > 9223372036854775808.0 || ts < -9223372036854775808.0)
      throw ParamError("cannot parse " + quote(text) + " to a valid duration. It overflows int64");
    return go_int64(ts);
  }
  std::int64_t ms = 0;
  if (parse_prom_duration(text, ms)) return ms * 1'000'000;
  throw ParamError("cannot parse " + quote(text) + " to a valid duration");
}

}  // namespace promapi

namespace {

// An API error with Prometheus's errorType.
class ApiError : public std::runtime_error {
 public:
  ApiError(std::string type, const std::string& message)
      : std::runtime_error(message), type_(std::move(type)) {}
  [[nodiscard]] const std::string& type() const noexcept { return type_; }

 private:
  std::string type_;
};

[[noreturn]] void invalid_param(std::string_view name, std::string_view message) {
  throw ApiError("bad_data",
                 "invalid parameter \"" + std::string(name) + "\": " + std::string(message));
}

http::status status_of(std::string_view type) {
  if (type == "bad_data") return http::status::bad_request;
  if (type == "execution") return http::status::unprocessable_entity;
  if (type == "timeout" || type == "canceled" || type == "unavailable")
    return http::status::service_unavailable;
  if (type == "not_found") return http::status::not_found;
  return http::status::internal_server_error;
}

Outcome error_outcome(std::string_view type, std::string_view message) {
  std::string body = R"({"status":"error","errorType":)";
  query::append_json_string(body, type);
  body += R"(,"error":)";
  query::append_json_string(body, message);
  body += '}';
  return {status_of(type), std::move(body)};
}

Outcome success(std::string_view data) {
  std::string body = R"({"status":"success","data":)";
  body += data;
  body += '}';
  return {http::status::ok, std::move(body)};
}

// Runs f, turning every failure into Prometheus's error answer.
template <class F>
Outcome guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const ApiError& e) {
    return error_outcome(e.type(), e.what());
  } catch (const query::QueryError& e) {
    return error_outcome(query::error_type_name(e.type()), e.what());
  } catch (const std::exception& e) {
    return error_outcome("internal", e.what());
  } catch (...) {
    return error_outcome("internal", "internal error");
  }
}

bool is_form(std::string_view ct) {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ')
    ct.remove_suffix(1);
  return core::iequals(ct, "application/x-www-form-urlencoded");
}

// Go's r.ParseForm: a form-encoded POST body's fields first, then the URL's.
QueryParams collect_params(const Request& req, std::string_view body) {
  QueryParams params;
  if (req.method() == http::verb::post && !body.empty() &&
      is_form(req[http::field::content_type])) {
    if (!params.parse(body))
      throw ApiError("bad_data", "error parsing form values: invalid URL escape");
  }
  const std::string_view target = req.target();
  if (const auto q = target.find('?'); q != std::string_view::npos) {
    if (!params.parse(target.substr(q + 1)))
      throw ApiError("bad_data", "error parsing form values: invalid URL escape");
  }
  return params;
}

std::string value_of(const QueryParams& p, std::string_view key) {
  return std::string(p.get(key).value_or(std::string_view{}));
}

// parseTimeParam: the default when absent or empty.
std::int64_t time_param(const QueryParams& p, std::string_view name, std::int64_t fallback) {
  const std::string v = value_of(p, name);
  if (v.empty()) return fallback;
  try {
    return promapi::parse_time(v);
  } catch (const promapi::ParamError& e) {
    invalid_param(name, "Invalid time value for '" + std::string(name) + "': " + e.what());
  }
}

std::int64_t required_time(const QueryParams& p, std::string_view name) {
  try {
    return promapi::parse_time(value_of(p, name));
  } catch (const promapi::ParamError& e) {
    invalid_param(name, e.what());
  }
}

std::int64_t duration_param(const QueryParams& p, std::string_view name) {
  try {
    return promapi::parse_duration_ns(value_of(p, name));
  } catch (const promapi::ParamError& e) {
    invalid_param(name, e.what());
  }
}

// The deadline: now + the smaller of `timeout` and --query-timeout.
std::chrono::steady_clock::time_point deadline_of(const QueryParams& p, const QueryApi& api,
                                                  std::chrono::steady_clock::time_point received) {
  auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(api.options().timeout);
  if (!value_of(p, "timeout").empty()) {
    const std::chrono::nanoseconds asked{duration_param(p, "timeout")};
    limit = std::min(limit, asked);
  }
  return received + limit;
}

void check_queue(std::chrono::steady_clock::time_point deadline) {
  if (std::chrono::steady_clock::now() > deadline)
    throw query::QueryError(query::ErrorType::timeout, "query timed out in query queue");
}

// Times the phases of one query: the first lap() after construction also
// records queue_time (from the request's arrival to the job's start). A
// phase that throws is not recorded (nor are the ones after it).
class PhaseTimer {
 public:
  PhaseTimer(const QueryApi& api, QueryApi::Endpoint endpoint,
             std::chrono::steady_clock::time_point received)
      : api_(api), endpoint_(endpoint), last_(std::chrono::steady_clock::now()) {
    api_.observe(endpoint_, QueryApi::Slice::queue_time,
                 std::chrono::duration<double>(last_ - received).count());
  }
  void lap(QueryApi::Slice slice) {
    const auto now = std::chrono::steady_clock::now();
    api_.observe(endpoint_, slice, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  const QueryApi& api_;
  QueryApi::Endpoint endpoint_;
  std::chrono::steady_clock::time_point last_;
};

// What a job needs of the server, copied out of the request context.
struct Env {
  const series::SeriesIndex* index = nullptr;
  std::shared_ptr<history::HistoryStore> history;
  std::int64_t now_ms = 0;
  std::int64_t stale_after_ms = 0;
  std::int64_t lookback_ms = 0;
  std::chrono::steady_clock::time_point received;
  const RemoteTypes* remote_types = nullptr;
  // True once the client closed its connection (null: not watched).
  std::shared_ptr<const std::atomic<bool>> client_gone;

  [[nodiscard]] HistoryQueryable queryable(bool live_only = false) const {
    return HistoryQueryable(
        *index, history.get(),
        {.now_ms = now_ms,
         .stale_after_ms = stale_after_ms,
         .liveness_step_ms = std::clamp<std::int64_t>(lookback_ms / 4, 1, 15'000),
         .live_only = live_only});
  }
};

QueryApi& api_of(RequestContext& ctx) {
  if (!ctx.options.query) throw std::logic_error("the query API is not configured");
  return *ctx.options.query;
}

Env env_of(RequestContext& ctx) {
  return {.index = &ctx.index,
          .history = ctx.options.history,
          .now_ms = ctx.now_ms(),
          .stale_after_ms = ctx.options.stale_after.count(),
          .lookback_ms = api_of(ctx).options().lookback_delta.count(),
          .received = std::chrono::steady_clock::now(),
          .remote_types = ctx.remote_types,
          .client_gone = ctx.client != nullptr ? ctx.client->watch() : nullptr};
}

Response to_response(const Request& req, Outcome out) {
  Response res{out.status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(out.body);
  return res;
}

// The query with a bad_data error worded as Prometheus's invalidParamError.
query::ExprPtr parse_query(const std::string& text) {
  try {
    return query::parse(text);
  } catch (const query::QueryError& e) {
    if (e.type() == query::ErrorType::bad_data) invalid_param("query", e.what());
    throw;
  }
}

// parser.ParseMetricSelector for match[].
std::vector<query::Matcher> parse_selector(const std::string& text) {
  auto expr = query::parse(text);
  if (expr->kind != query::ExprKind::vector_selector)
    throw query::QueryError(query::ErrorType::bad_data,
                            "1:1: parse error: expected a metric selector, got " + text);
  const auto& sel = static_cast<const query::VectorSelector&>(*expr);
  if (sel.offset_set || sel.at.set())
    throw query::QueryError(query::ErrorType::bad_data,
                            "1:1: parse error: unexpected modifier in a metric selector");
  return sel.matchers;
}

// parseMatchersParam.
std::vector<std::vector<query::Matcher>> matchers_param(const QueryParams& p) {
  std::vector<std::vector<query::Matcher>> sets;
  for (const auto s : p.all("match[]")) {
    try {
      sets.push_back(parse_selector(std::string(s)));
    } catch (const query::QueryError& e) {
      invalid_param("match[]", e.what());
    }
  }
  for (const auto& set : sets) {
    const bool any =
        std::any_of(set.begin(), set.end(), [](const query::Matcher& m) { return !m.matches(""); });
    if (!any) invalid_param("match[]", "match[] must contain at least one non-empty matcher");
  }
  return sets;
}

std::string string_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    query::append_json_string(out, items[i]);
  }
  out += ']';
  return out;
}

// Series for labels, label values and series: with a time range or not.
std::vector<query::LabelSet> select_series(const Env& env, const QueryParams& p,
                                           const std::vector<std::vector<query::Matcher>>& sets) {
  const bool ranged = !value_of(p, "start").empty() || !value_of(p, "end").empty();
  const std::int64_t start = time_param(p, "start", promapi::kMinTimeMs);
  const std::int64_t end = time_param(p, "end", promapi::kMaxTimeMs);
  return env.queryable(!ranged).series(sets, start, end);
}

bool valid_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (i > 0 && promapi::is_digit(c));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// ---- QueryApi ----------------------------------------------------------------

QueryApi::QueryApi(QueryApiOptions options)
    : options_(options),
      engine_({.lookback_delta_ms = options.lookback_delta.count(),
               .max_samples = options.max_samples}) {
  if (options_.max_concurrency == 0) options_.max_concurrency = 1;
}

QueryApi::~QueryApi() {
  shutdown();
}

void QueryApi::shutdown() noexcept {
  stopping_.store(true);
  std::unique_ptr<asio::thread_pool> pool;
  {
    std::lock_guard lock(pool_mu_);
    stopped_ = true;
    pool = std::move(pool_);
  }
  if (pool) pool->join();
}

void QueryApi::set_rules_source(DataSource source) {
  std::lock_guard lock(sources_mu_);
  rules_ = std::move(source);
}

void QueryApi::set_alerts_source(DataSource source) {
  std::lock_guard lock(sources_mu_);
  alerts_ = std::move(source);
}

std::string QueryApi::rules_data(const QueryParams& params) const {
  DataSource source;
  {
    std::lock_guard lock(sources_mu_);
    source = rules_;
  }
  return source ? source(params) : std::string(R"({"groups":[]})");
}

std::string QueryApi::alerts_data(const QueryParams& params) const {
  DataSource source;
  {
    std::lock_guard lock(sources_mu_);
    source = alerts_;
  }
  return source ? source(params) : std::string(R"({"alerts":[]})");
}

void QueryApi::instrument(std::shared_ptr<telemetry::Registry> registry) {
  if (!registry) return;
  auto& family = registry->histogram(
      "metrics_server_query_duration_seconds",
      "Query timings by endpoint and phase: queue_time (waiting for a query thread), "
      "prepare_time (parameters and parsing), inner_eval (the engine), result_encode (JSON).",
      {"endpoint", "slice"}, telemetry::latency_buckets());
  constexpr std::array<std::string_view, kEndpoints> kEndpointNames{"/api/v1/query",
                                                                    "/api/v1/query_range"};
  constexpr std::array<std::string_view, kSlices> kSliceNames{"queue_time", "prepare_time",
                                                              "inner_eval", "result_encode"};
  for (std::size_t e = 0; e < kEndpoints; ++e) {
    for (std::size_t sl = 0; sl < kSlices; ++sl) {
      durations_[e * kSlices + sl].store(&family.with({kEndpointNames[e], kSliceNames[sl]}),
                                         std::memory_order_release);
    }
  }
  telemetry_ = std::move(registry);
}

void QueryApi::observe(Endpoint endpoint, Slice slice, double seconds) const noexcept {
  const std::size_t i =
      static_cast<std::size_t>(endpoint) * kSlices + static_cast<std::size_t>(slice);
  if (telemetry::Histogram* h = durations_[i].load(std::memory_order_acquire)) h->observe(seconds);
}

asio::awaitable<Outcome> QueryApi::run(Job job) {
  // Not a coroutine (GCC 12 mishandles by-value arguments of coroutines):
  // the job moves straight into the initiation.
  return asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
      [this, job = std::move(job)](auto handler) mutable {
        auto executor = asio::get_associated_executor(handler);
        auto refuse = [&](Outcome out) {
          asio::post(executor, [handler = std::move(handler), out = std::move(out)]() mutable {
            std::move(handler)(std::move(out));
          });
        };
        if (in_flight_.fetch_add(1) >= options_.max_concurrency + options_.max_queued) {
          in_flight_.fetch_sub(1);
          refuse(error_outcome("unavailable",
                               "too many concurrent queries (--query-max-concurrency " +
                                   std::to_string(options_.max_concurrency) + " running, " +
                                   std::to_string(options_.max_queued) + " waiting)"));
          return;
        }
        std::lock_guard lock(pool_mu_);
        if (stopped_) {
          in_flight_.fetch_sub(1);
          refuse(error_outcome("canceled", "the server is shutting down"));
          return;
        }
        if (!pool_) pool_ = std::make_unique<asio::thread_pool>(options_.max_concurrency);
        // The outcome is moved into the completion posted to the caller's
        // executor: nothing is shared between this thread and the caller.
        asio::post(*pool_, [this, job = std::move(job), handler = std::move(handler),
                            executor]() mutable {
          Outcome out = stopping_.load() ? error_outcome("canceled", "the server is shutting down")
                                         : guarded([&] { return job(stopping_); });
          in_flight_.fetch_sub(1);
          asio::post(executor, [handler = std::move(handler), out = std::move(out)]() mutable {
            std::move(handler)(std::move(out));
          });
        });
      },
      asio::use_awaitable);
}

// ---- Handlers ----------------------------------------------------------------

namespace {

// The job of a pooled endpoint: collects the parameters (on the pool, from
// copies of the request's parts), then runs `work(api, env, params, cancel)`.
template <class Work>
QueryApi::Job make_job(RequestContext& ctx, const std::string& body, Work work) {
  QueryApi& api = api_of(ctx);
  Request head;
  head.method(ctx.request.method());
  head.target(ctx.request.target());
  if (const auto ct = ctx.request[http::field::content_type]; !ct.empty())
    head.set(http::field::content_type, ct);
  return [&api, env = env_of(ctx), head = std::move(head), body = body,
          work](const std::atomic<bool>& cancel) {
    const QueryParams params = collect_params(head, body);
    return work(api, env, params, cancel);
  };
}

// Runs a job on the pool; `job` is a local of the calling coroutine.
asio::awaitable<Response> pooled(RequestContext& ctx, QueryApi::Job& job) {
  Outcome out = co_await api_of(ctx).run(std::move(job));
  co_return to_response(ctx.request, std::move(out));
}

}  // namespace

asio::awaitable<Response> api_query(RequestContext& ctx, const RouteMatch&, std::string& body) {
  auto job = make_job(
      ctx, body,
      [](const QueryApi& api, const Env& env, const QueryParams& p,
         const std::atomic<bool>& cancel) {
        PhaseTimer timer(api, QueryApi::Endpoint::query, env.received);
        const std::int64_t t = time_param(p, "time", env.now_ms);
        const auto deadline = deadline_of(p, api, env.received);
        auto expr = parse_query(value_of(p, "query"));
        check_queue(deadline);
        timer.lap(QueryApi::Slice::prepare_time);
        const auto q = env.queryable();
        auto result = api.engine().instant(
            q, *expr, t,
            {.deadline = deadline, .cancel = &cancel, .client_gone = env.client_gone.get()});
        timer.lap(QueryApi::Slice::inner_eval);
        auto out = success(query::encode_data(result));
        timer.lap(QueryApi::Slice::result_encode);
        return out;
      });
  co_return co_await pooled(ctx, job);
}

asio::awaitable<Response> api_query_range(RequestContext& ctx, const RouteMatch&,
                                          std::string& body) {
  auto job = make_job(
      ctx, body,
      [](const QueryApi& api, const Env& env, const QueryParams& p,
         const std::atomic<bool>& cancel) {
        PhaseTimer timer(api, QueryApi::Endpoint::query_range, env.received);
        const std::int64_t start = required_time(p, "start");
        const std::int64_t end = required_time(p, "end");
        if (end < start) invalid_param("end", "end timestamp must not be before start time");
        const std::int64_t step_ns = duration_param(p, "step");
        if (step_ns <= 0)
          invalid_param("step",
                        "zero or negative query resolution step widths are not accepted. Try a "
                        "positive integer");
        // end.Sub(start) / step, in nanoseconds (Sub saturates).
        constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
        const std::uint64_t diff_ms =
            static_cast<std::uint64_t>(end) - static_cast<std::uint64_t>(start);
        const std::int64_t span_ns = diff_ms > static_cast<std::uint64_t>(kMax / 1'000'000)
                                         ? kMax
                                         : static_cast<std::int64_t>(diff_ms) * 1'000'000;
        if (span_ns / step_ns > 11000)
          throw ApiError("bad_data",
                         "exceeded maximum resolution of 11,000 points per timeseries. Try "
                         "decreasing the query resolution (?step=XX)");
        const auto deadline = deadline_of(p, api, env.received);
        auto expr = parse_query(value_of(p, "query"));
        check_queue(deadline);
        const std::int64_t step_ms = std::max<std::int64_t>(step_ns / 1'000'000, 1);
        timer.lap(QueryApi::Slice::prepare_time);
        const auto q = env.queryable();
        try {
          auto result = api.engine().range(
              q, *expr, start, end, step_ms,
              {.deadline = deadline, .cancel = &cancel, .client_gone = env.client_gone.get()});
          timer.lap(QueryApi::Slice::inner_eval);
          auto out = success(query::encode_data(result));
          timer.lap(QueryApi::Slice::result_encode);
          return out;
        } catch (const query::QueryError& e) {
          // The expression's type is checked when the query is made.
          if (e.type() == query::ErrorType::bad_data) invalid_param("query", e.what());
          throw;
        }
      });
  co_return co_await pooled(ctx, job);
}

asio::awaitable<Response> api_series(RequestContext& ctx, const RouteMatch&, std::string& body) {
  auto job =
      make_job(ctx, body,
               [](const QueryApi&, const Env& env, const QueryParams& p, const std::atomic<bool>&) {
                 if (p.all("match[]").empty())
                   throw ApiError("bad_data", "no match[] parameter provided");
                 (void)time_param(p, "start", 0);
                 (void)time_param(p, "end", 0);
                 const auto sets = matchers_param(p);
                 std::string data = "[";
                 bool first = true;
                 for (const auto& labels : select_series(env, p, sets)) {
                   if (!first) data += ',';
                   first = false;
                   query::append_labels(data, labels);
                 }
                 data += ']';
                 return success(data);
               });
  co_return co_await pooled(ctx, job);
}

asio::awaitable<Response> api_labels(RequestContext& ctx, const RouteMatch&, std::string& body) {
  auto job =
      make_job(ctx, body,
               [](const QueryApi&, const Env& env, const QueryParams& p, const std::atomic<bool>&) {
                 (void)time_param(p, "start", 0);
                 (void)time_param(p, "end", 0);
                 const auto sets = matchers_param(p);
                 std::set<std::string> names;
                 for (const auto& labels : select_series(env, p, sets))
                   for (const auto& l : labels)
                     names.insert(l.name);
                 return success(string_array({names.begin(), names.end()}));
               });
  co_return co_await pooled(ctx, job);
}

asio::awaitable<Response> api_label_values(RequestContext& ctx, const RouteMatch& m,
                                           std::string& body) {
  const std::string name(m.param("name"));
  auto job = make_job(
      ctx, body,
      [name](const QueryApi&, const Env& env, const QueryParams& p, const std::atomic<bool>&) {
        if (!valid_label_name(name))
          throw ApiError("bad_data", "invalid label name: " + promapi::quote(name));
        (void)time_param(p, "start", 0);
        (void)time_param(p, "end", 0);
        const auto sets = matchers_param(p);
        std::set<std::string> values;
        for (const auto& labels : select_series(env, p, sets)) {
          const auto v = query::get(labels, name);
          if (!v.empty()) values.emplace(v);
        }
        return success(string_array({values.begin(), values.end()}));
      });
  co_return co_await pooled(ctx, job);
}

asio::awaitable<Response> api_metadata(RequestContext& ctx, const RouteMatch&, std::string& body) {
  auto job =
      make_job(ctx, body,
               [](const QueryApi&, const Env& env, const QueryParams& p, const std::atomic<bool>&) {
                 long long limit = -1;
                 if (const auto s = value_of(p, "limit"); !s.empty()) {
                   char* end = nullptr;
                   errno = 0;
                   limit = std::strtoll(s.c_str(), &end, 10);
                   if (errno != 0 || end != s.c_str() + s.size() || s[0] == ' ')
                     throw ApiError("bad_data", "limit must be a number");
                 }
                 const std::string metric = value_of(p, "metric");
                 std::map<std::string, std::set<std::string>> types;
                 if (env.history) {
                   for (const auto& e : env.history->series()) {
                     if (!metric.empty() && e.identity->id != metric) continue;
                     auto type = e.identity->type;
                     // Remote-written counters are gauges in the model.
                     if (type == core::MetricType::gauge && env.remote_types != nullptr &&
                         env.remote_types->counter(e.identity->id))
                       type = core::MetricType::counter;
                     types[e.identity->id].insert(std::string(core::to_string(type)));
                   }
                 }
                 if (!env.index->liveness(env.now_ms, env.stale_after_ms).empty()) {
                   for (const std::string_view n : {series::kAgentUp, series::kAgentLastPush})
                     if (metric.empty() || metric == n) types[std::string(n)].insert("gauge");
                 }
                 std::string data = "{";
                 long long n = 0;
                 for (const auto& [name, set] : types) {
                   if (limit >= 0 && n >= limit) break;
                   if (n++ > 0) data += ',';
                   query::append_json_string(data, name);
                   data += ":[";
                   bool first = true;
                   for (const auto& type : set) {
                     if (!first) data += ',';
                     first = false;
                     data += R"({"type":")" + type + R"(","help":"","unit":""})";
                   }
                   data += ']';
                 }
                 data += '}';
                 return success(data);
               });
  co_return co_await pooled(ctx, job);
}

asio::awaitable<Response> api_buildinfo(RequestContext& ctx, const RouteMatch&, std::string&) {
  // The version Grafana's data source reads to pick its features: the
  // Prometheus API this server answers.
  co_return to_response(
      ctx.request,
      success(R"({"version":"2.42.0","revision":"metrics-server","branch":"","buildUser":"",)"
              R"("buildDate":"","goVersion":""})"));
}

asio::awaitable<Response> api_rules(RequestContext& ctx, const RouteMatch&, std::string& body) {
  QueryApi& api = api_of(ctx);
  const Outcome out = guarded([&] {
    const QueryParams p = collect_params(ctx.request, body);
    std::string type = value_of(p, "type");
    for (char& c : type)
      c = promapi::lower(c);
    if (!type.empty() && type != "alert" && type != "record")
      invalid_param("type", "not supported value " + promapi::quote(type));
    return success(api.rules_data(p));
  });
  co_return to_response(ctx.request, out);
}

asio::awaitable<Response> api_alerts(RequestContext& ctx, const RouteMatch&, std::string& body) {
  QueryApi& api = api_of(ctx);
  const Outcome out = guarded([&] {
    const QueryParams p = collect_params(ctx.request, body);
    return success(api.alerts_data(p));
  });
  co_return to_response(ctx.request, out);
}

}  // namespace metrics::server
