#include "metrics/server/web_auth.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

#include "await_storage.hpp"

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete
// when a coroutine awaits another one here (a false positive, GCC bug
// 109224; session.hpp does the same).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace metrics::server {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using Digest = std::array<unsigned char, 32>;

namespace {

[[noreturn]] void fail(std::string_view name, const std::string& why) {
  throw WebConfigError(std::string(name) + ": " + why);
}

std::string where(const YAML::Node& node) {
  const auto mark = node.Mark();
  return mark.line >= 0 ? "line " + std::to_string(mark.line + 1) + ": " : std::string();
}

std::string scalar(const YAML::Node& node, std::string_view name, std::string_view key) {
  if (!node.IsScalar()) fail(name, where(node) + std::string(key) + " must be a string");
  return node.as<std::string>();
}

bool boolean(const YAML::Node& node, std::string_view name, std::string_view key) {
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    fail(name, where(node) + std::string(key) + " must be true or false");
  }
}

// The keys of a mapping, refusing duplicates and keys outside `known`
// (Prometheus unmarshals strictly: promtool refuses both).
void check_keys(const YAML::Node& map, std::string_view name, std::string_view what,
                std::initializer_list<std::string_view> known) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const auto key = kv.first.as<std::string>();
    if (!seen.insert(key).second) fail(name, where(kv.first) + "key \"" + key + "\" set twice");
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      fail(name, where(kv.first) + "unknown key \"" + key + "\" in " + std::string(what));
    }
  }
}

std::string resolve(const std::string& path, std::string_view config_file) {
  if (path.empty() || path.front() == '/' || config_file.empty()) return path;
  return (std::filesystem::path(config_file).parent_path() / path).string();
}

Digest sha256(std::string_view text) {
  Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d.data());
  return d;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot read: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

YAML::Node parse_yaml(std::string_view yaml, std::string_view name) {
  try {
    return YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    fail(name, "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

// Standard base64 with padding, as RFC 7617 uses; nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (c == '=') {
      if (i + 2 < in.size()) return std::nullopt;
      ++pad;
      continue;
    }
    if (v < 0 || pad > 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const auto a = static_cast<unsigned char>(text[i]);
    const auto b = static_cast<unsigned char>(prefix[i]);
    if (std::tolower(a) != std::tolower(b)) return false;
  }
  return true;
}

std::int64_t steady_ms(const core::Clock& clock) {
  return std::chrono::duration_cast<milliseconds>(clock.steady_now().time_since_epoch()).count();
}

// An IPv6 client usually owns a whole /64: its failures count together.
std::string address_key(std::string_view peer) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(std::string(peer), ec);
  if (ec || !address.is_v6()) return std::string(peer);
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace

bool is_bcrypt_hash(std::string_view hash) noexcept {
  if (hash.size() != 60) return false;
  if (!(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$"))) {
    return false;
  }
  if (hash[6] != '$' || hash[4] < '0' || hash[4] > '3' || hash[5] < '0' || hash[5] > '9') {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(hash.begin() + 7, hash.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '/';
  });
}

bool bcrypt_matches(std::string_view password, const std::string& hash) {
  if (!is_bcrypt_hash(hash)) return false;
  // crypt_data is 32 KiB: one per pool thread.
  thread_local std::unique_ptr<crypt_data> data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const std::string phrase(password);
  const char* out = crypt_rn(phrase.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  if (out == nullptr || std::strlen(out) != hash.size()) return false;
  return CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
}

WebConfig parse_web_config(std::string_view yaml, std::string_view name) {
  WebConfig cfg;
  cfg.source = std::string(name);
  const YAML::Node root = parse_yaml(yaml, name);
  if (!root || root.IsNull()) return cfg;
  if (root.IsScalar() && root.as<std::string>().empty()) return cfg;
  if (!root.IsMap())
    fail(name,
         "expected a mapping of tls_server_config, http_server_config, "
         "basic_auth_users");
  check_keys(root, name, "the web config",
             {"tls_server_config", "http_server_config", "basic_auth_users"});
  if (const auto users = root["basic_auth_users"]; users && !users.IsNull()) {
    if (!users.IsMap()) fail(name, where(users) + "basic_auth_users must map names to hashes");
    std::set<std::string> seen;
    for (const auto& kv : users) {
      const auto user = kv.first.as<std::string>();
      if (!seen.insert(user).second) {
        fail(name, where(kv.first) + "user \"" + user + "\" set twice");
      }
      const auto hash = kv.second.IsScalar() ? kv.second.as<std::string>() : std::string();
      if (!is_bcrypt_hash(hash)) {
        fail(name, where(kv.second) + "the password of user \"" + user +
                       "\" is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31; make one with "
                       "htpasswd -nBC 10 " +
                       user + ")");
      }
      cfg.users.emplace_back(user, hash);
    }
    std::sort(cfg.users.begin(), cfg.users.end());
  }
  if (const auto tls = root["tls_server_config"]; tls && !tls.IsNull()) {
    if (!tls.IsMap()) fail(name, where(tls) + "tls_server_config must be a mapping");
    check_keys(tls, name, "tls_server_config",
               {"cert_file", "key_file", "client_auth_type", "client_ca_file", "cipher_suites",
                "curve_preferences", "min_version", "max_version", "prefer_server_cipher_suites"});
    if (tls["cert_file"]) {
      cfg.tls.cert_file = resolve(scalar(tls["cert_file"], name, "cert_file"), name);
    }
    if (tls["key_file"])
      cfg.tls.key_file = resolve(scalar(tls["key_file"], name, "key_file"), name);
    if (cfg.tls.cert_file.empty() != cfg.tls.key_file.empty()) {
      fail(name, "tls_server_config needs both cert_file and key_file");
    }
    if (tls["client_auth_type"]) {
      const auto type = scalar(tls["client_auth_type"], name, "client_auth_type");
      if (!type.empty() && type != "NoClientCert") {
        fail(name, where(tls["client_auth_type"]) + "client_auth_type " + type +
                       " is not supported by this server (it does not verify client "
                       "certificates); use NoClientCert and basic_auth_users");
      }
    }
    if (tls["min_version"]) {
      cfg.tls.min_version = scalar(tls["min_version"], name, "min_version");
      if (cfg.tls.min_version == "TLS10" || cfg.tls.min_version == "TLS11") {
        cfg.not_applied.push_back("tls_server_config.min_version " + cfg.tls.min_version +
                                  " (the server never speaks below TLS 1.2)");
        cfg.tls.min_version.clear();
      } else if (cfg.tls.min_version != "TLS12" && cfg.tls.min_version != "TLS13") {
        fail(name, where(tls["min_version"]) + "unknown TLS version " + cfg.tls.min_version);
      }
    }
    for (const char* key : {"client_ca_file", "cipher_suites", "curve_preferences", "max_version",
                            "prefer_server_cipher_suites"}) {
      if (tls[key]) cfg.not_applied.push_back(std::string("tls_server_config.") + key);
    }
    if (!cfg.tls.min_version.empty() && cfg.tls.cert_file.empty()) cfg.tls.min_version.clear();
  }
  if (const auto http = root["http_server_config"]; http && !http.IsNull()) {
    if (!http.IsMap()) fail(name, where(http) + "http_server_config must be a mapping");
    check_keys(http, name, "http_server_config", {"http2", "headers"});
    if (http["http2"]) {
      (void)boolean(http["http2"], name, "http2");
      cfg.not_applied.emplace_back("http_server_config.http2 (the server speaks HTTP/1.1)");
    }
    if (http["headers"]) cfg.not_applied.emplace_back("http_server_config.headers");
  }
  return cfg;
}

void parse_web_tokens(std::string_view yaml, std::string_view name, WebConfig& into) {
  const YAML::Node root = parse_yaml(yaml, name);
  if (!root || root.IsNull()) return;
  if (!root.IsMap()) fail(name, "expected a mapping with bearer_auth_tokens");
  check_keys(root, name, "the token file", {"bearer_auth_tokens", "authenticated_writes"});
  if (const auto tokens = root["bearer_auth_tokens"]; tokens && !tokens.IsNull()) {
    if (!tokens.IsSequence()) fail(name, where(tokens) + "bearer_auth_tokens must be a list");
    for (const auto& t : tokens) {
      const auto text = scalar(t, name, "a token");
      if (text.starts_with("sha256:")) {
        const std::string_view hex = std::string_view(text).substr(7);
        Digest d{};
        bool ok = hex.size() == 64;
        for (std::size_t i = 0; ok && i < 32; ++i) {
          const int hi = hex_digit(hex[2 * i]);
          const int lo = hex_digit(hex[2 * i + 1]);
          ok = hi >= 0 && lo >= 0;
          d[i] = static_cast<unsigned char>(hi * 16 + lo);
        }
        if (!ok) fail(name, where(t) + "sha256: must be followed by 64 hex digits");
        into.tokens.push_back(d);
        continue;
      }
      if (text.size() < 16) fail(name, where(t) + "a token must be at least 16 characters");
      if (std::any_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' '; })) {
        fail(name, where(t) + "a token must not contain spaces or control characters");
      }
      into.tokens.push_back(sha256(text));
    }
  }
  if (const auto writes = root["authenticated_writes"]; writes) {
    into.authenticated_writes = boolean(writes, name, "authenticated_writes");
  }
}

WebConfig load_web_config(const std::string& web_config_file, const std::string& tokens_file) {
  WebConfig cfg;
  if (!web_config_file.empty()) cfg = parse_web_config(read_file(web_config_file), web_config_file);
  if (!tokens_file.empty()) {
    parse_web_tokens(read_file(tokens_file), tokens_file, cfg);
    cfg.source = cfg.source.empty() ? tokens_file : cfg.source + " and " + tokens_file;
  }
  return cfg;
}

// ---------------------------------------------------------------------------

struct WebAuth::State {
  mutable std::mutex mu;
  std::shared_ptr<const WebConfig> config;
};

// Verified credentials: HMAC(key, credentials) -> user, FIFO-evicted.
struct WebAuth::Cache {
  struct Hash {
    std::size_t operator()(const Digest& d) const noexcept {
      std::size_t h = 0;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  explicit Cache(std::size_t entries_max) : capacity(std::max<std::size_t>(entries_max, 1)) {
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
      throw std::runtime_error("web auth: no random bytes for the credentials cache key");
    }
  }
  [[nodiscard]] Digest digest(std::string_view credentials) const {
    Digest d{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(credentials.data()), credentials.size(), d.data(),
         &len);
    return d;
  }
  std::optional<std::string> find(const Digest& d, std::uint64_t gen) {
    std::lock_guard lock(mu);
    if (gen != generation) return std::nullopt;
    auto it = entries.find(d);
    if (it == entries.end()) return std::nullopt;
    return it->second;
  }
  void add(const Digest& d, std::string user, std::uint64_t gen) {
    std::lock_guard lock(mu);
    if (gen != generation || entries.contains(d)) return;
    if (entries.size() >= capacity) {
      entries.erase(order.front());
      order.erase(order.begin());
    }
    entries.emplace(d, std::move(user));
    order.push_back(d);
  }
  void clear() {
    std::lock_guard lock(mu);
    entries.clear();
    order.clear();
    ++generation;
  }
  std::uint64_t current() {
    std::lock_guard lock(mu);
    return generation;
  }

  std::size_t capacity;
  std::array<unsigned char, 32> key{};
  std::mutex mu;
  std::unordered_map<Digest, std::string, Hash> entries;
  std::vector<Digest> order;
  std::uint64_t generation = 0;
};

// Failures per address in a fixed table of 4-way sets.
struct WebAuth::Throttle {
  struct Slot {
    std::uint64_t key = 0;  // 0: free
    std::uint32_t failures = 0;
    std::int64_t last_ms = 0;
    std::int64_t next_ms = 0;  // the next attempt's turn
    std::string address;       // for the log line
  };
  static constexpr std::size_t kWays = 4;

  explicit Throttle(const WebAuthOptions& o)
      : options(o),
        clock(o.clock ? o.clock : core::real_clock()),
        slots(std::max<std::size_t>(o.throttle_slots / kWays, 1) * kWays) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) seed = 0x9e3779b9;
  }

  [[nodiscard]] std::uint64_t hash(std::string_view address) const {
    std::uint64_t h = seed ^ std::hash<std::string_view>{}(address);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h == 0 ? 1 : h;
  }
  [[nodiscard]] bool live(const Slot& s, std::int64_t now) const {
    return s.key != 0 && now - s.last_ms < options.forget_after.count();
  }
  // The slot of `key`, or null; with `create`, a free, stale or least
  // failing slot of its set is taken.
  Slot* find(std::uint64_t key, std::int64_t now, bool create) {
    const std::size_t set = (key % (slots.size() / kWays)) * kWays;
    Slot* victim = nullptr;
    for (std::size_t i = 0; i < kWays; ++i) {
      Slot& s = slots[set + i];
      if (s.key == key && live(s, now)) return &s;
      if (!create) continue;
      if (!live(s, now)) {
        if (victim == nullptr || live(*victim, now)) victim = &s;
      } else if (victim == nullptr || (live(*victim, now) && s.failures < victim->failures)) {
        victim = &s;
      }
    }
    if (!create || victim == nullptr) return nullptr;
    *victim = Slot{.key = key, .failures = 0, .last_ms = now, .next_ms = now, .address = {}};
    return victim;
  }
  [[nodiscard]] milliseconds delay(std::uint32_t failures) const {
    if (failures < options.free_failures) return milliseconds{0};
    const auto steps = std::min<std::uint32_t>(failures - options.free_failures, 20);
    return std::min<milliseconds>(options.max_delay, options.base_delay * (1LL << steps));
  }

  // Before an attempt: the wait for its turn (and the turn reserved), or
  // nullopt to refuse it now.
  std::optional<milliseconds> reserve(std::string_view address, bool commit) {
    std::lock_guard lock(mu);
    const std::int64_t now = steady_ms(*clock);
    Slot* s = find(hash(address), now, false);
    if (s == nullptr || s->failures < options.free_failures) return milliseconds{0};
    const std::int64_t turn = std::max(now, s->next_ms);
    const milliseconds wait{turn - now};
    if (wait > options.max_wait) return std::nullopt;
    if (commit) s->next_ms = turn + delay(s->failures).count();
    return wait;
  }

  void failed(std::string_view address) {
    std::lock_guard lock(mu);
    const std::int64_t now = steady_ms(*clock);
    Slot* s = find(hash(address), now, true);
    ++s->failures;
    s->last_ms = now;
    if (s->address.empty()) s->address = std::string(address);
    ++total;
    ++period_failures;
    if (s->failures > period_top) {
      period_top = s->failures;
      period_top_address = s->address;
    }
    if (now - last_log_ms >= options.log_interval.count()) {
      report(now);  // the first failure after a quiet interval: at once
    } else if (period_failures == 1) {
      wake.notify_all();  // the reporter's turn, at the end of the interval
    }
  }

  // The reporter thread: waits for a failure not yet reported, then for the
  // end of the interval of the last line, and writes the next one. Without
  // failures it waits on no deadline at all.
  void report_loop() noexcept {
    std::unique_lock lock(mu);
    while (!stopping) {
      if (period_failures == 0) {
        wake.wait(lock, [this] { return stopping || period_failures > 0; });
        continue;
      }
      const core::Clock::SteadyTime due{milliseconds{last_log_ms + options.log_interval.count()}};
      (void)clock->wait_until(wake, lock, due, [this] { return stopping; });
      if (stopping) break;
      const std::int64_t now = steady_ms(*clock);
      if (now - last_log_ms >= options.log_interval.count()) report(now);
    }
    report(steady_ms(*clock));  // what is left at shutdown
  }

  void stop() noexcept {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake.notify_all();
  }

  // One line with the count since the last one; nothing without failures.
  void report(std::int64_t now) noexcept {
    if (period_failures == 0) return;
    std::size_t addresses = 0;
    for (const auto& s : slots)
      addresses += live(s, now) ? 1u : 0u;
    try {
      spdlog::warn(
          "auth: {} failed authentication attempt(s) since the last report; {} address(es) "
          "tracked, the most from {} ({} in a row)",
          period_failures, addresses, period_top_address, period_top);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a log line must not end the reporter
    }
    last_log_ms = now;
    period_failures = 0;
    period_top = 0;
    period_top_address.clear();
  }

  [[nodiscard]] std::size_t tracked() const {
    std::lock_guard lock(mu);
    const std::int64_t now = steady_ms(*clock);
    return static_cast<std::size_t>(
        std::count_if(slots.begin(), slots.end(), [&](const Slot& s) { return live(s, now); }));
  }

  const WebAuthOptions& options;
  std::shared_ptr<core::Clock> clock;
  mutable std::mutex mu;
  std::condition_variable wake;  // a failure to report, or stop()
  bool stopping = false;
  std::vector<Slot> slots;
  std::uint64_t seed = 0;
  std::uint64_t total = 0;
  std::uint64_t period_failures = 0;
  std::uint32_t period_top = 0;
  std::string period_top_address;
  std::int64_t last_log_ms = -(std::int64_t{1} << 40);
};

WebAuth::WebAuth(WebConfig config, WebAuthOptions options)
    : options_(options),
      state_(std::make_unique<State>()),
      throttle_(std::make_unique<Throttle>(options_)),
      cache_(std::make_unique<Cache>(options_.cache_entries)),
      pool_(std::make_unique<asio::thread_pool>(std::max(options_.bcrypt_threads, 1u))) {
  state_->config = std::make_shared<const WebConfig>(std::move(config));
  reporter_ = std::thread([t = throttle_.get()] { t->report_loop(); });
}

WebAuth::~WebAuth() {
  shutdown();
}

void WebAuth::shutdown() noexcept {
  pool_->join();
  throttle_->stop();
  std::lock_guard lock(shutdown_mu_);
  if (reporter_.joinable()) reporter_.join();
}

void WebAuth::replace(WebConfig config) {
  auto next = std::make_shared<const WebConfig>(std::move(config));
  {
    std::lock_guard lock(state_->mu);
    state_->config = std::move(next);
  }
  cache_->clear();
}

std::shared_ptr<const WebConfig> WebAuth::config() const {
  std::lock_guard lock(state_->mu);
  return state_->config;
}

bool WebAuth::required() const {
  return config()->requires_auth();
}

std::string WebAuth::challenge() const {
  return config()->users.empty() ? R"(Bearer realm="metrics-server")"
                                 : R"(Basic realm="metrics-server", charset="UTF-8")";
}

std::size_t WebAuth::tracked_addresses() const {
  return throttle_->tracked();
}
std::size_t WebAuth::throttle_capacity() const noexcept {
  return throttle_->slots.size();
}
std::uint64_t WebAuth::failures_total() const noexcept {
  std::lock_guard lock(throttle_->mu);
  return throttle_->total;
}

namespace {
std::atomic<std::uint64_t> g_bcrypt_runs{0};
}

std::uint64_t WebAuth::bcrypt_runs() const noexcept {
  return g_bcrypt_runs.load();
}

std::optional<milliseconds> WebAuth::pending_delay(std::string_view peer) const {
  return throttle_->reserve(address_key(peer), false);
}

asio::awaitable<AuthVerdict> WebAuth::authenticate(std::string_view authorization,
                                                   std::string_view peer) {
  const auto cfg = config();
  const std::string address = address_key(peer);
  AuthVerdict verdict;
  std::string_view value = authorization;
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (value.empty()) co_return verdict;  // missing: no failure counted

  const bool basic = iequals_prefix(value, "basic ");
  const bool bearer = iequals_prefix(value, "bearer ");
  std::string_view credentials = value.substr(value.find(' ') + 1);
  while (!credentials.empty() && credentials.front() == ' ')
    credentials.remove_prefix(1);
  while (!credentials.empty() && credentials.back() == ' ')
    credentials.remove_suffix(1);

  // Known good credentials skip the throttle and bcrypt.
  const std::string tagged = std::string(basic ? "basic\n" : "bearer\n") + std::string(credentials);
  const std::uint64_t generation = cache_->current();
  const Digest key = cache_->digest(tagged);
  if (auto user = cache_->find(key, generation)) {
    verdict.kind = AuthVerdict::Kind::ok;
    verdict.user = std::move(*user);
    co_return verdict;
  }

  const auto wait = throttle_->reserve(address, true);
  if (!wait) {
    verdict.kind = AuthVerdict::Kind::throttled;
    verdict.retry_after = std::chrono::duration_cast<std::chrono::seconds>(options_.max_delay);
    if (verdict.retry_after.count() == 0) verdict.retry_after = std::chrono::seconds{1};
    throttle_->failed(address);
    co_return verdict;
  }
  if (wait->count() > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor, *wait);
    co_await timer.async_wait(asio::use_awaitable);
  }

  bool ok = false;
  std::string user;
  if (bearer && !cfg->tokens.empty()) {
    const Digest given = sha256(credentials);
    int matched = 0;
    for (const auto& t : cfg->tokens)
      matched |= CRYPTO_memcmp(t.data(), given.data(), given.size()) == 0 ? 1 : 0;
    ok = matched != 0;
    user = "token";
  } else if (basic && !cfg->users.empty()) {
    const auto decoded = base64_decode(credentials);
    const auto colon = decoded ? decoded->find(':') : std::string::npos;
    std::string name = colon != std::string::npos ? decoded->substr(0, colon) : std::string();
    std::string password = colon != std::string::npos ? decoded->substr(colon + 1) : std::string();
    const auto it =
        std::lower_bound(cfg->users.begin(), cfg->users.end(), name,
                         [](const auto& entry, const std::string& n) { return entry.first < n; });
    const bool known = colon != std::string::npos && it != cfg->users.end() && it->first == name;
    // An unknown user costs the same bcrypt as a known one.
    const std::string hash = known ? it->second : cfg->users.front().second;
    const bool matches = co_await detail::await_storage<bool>([this, &password, &hash](auto done) {
      asio::post(*pool_, [&password, &hash, done = std::move(done)]() mutable {
        g_bcrypt_runs.fetch_add(1);
        bool result = false;
        std::exception_ptr err;
        try {
          result = bcrypt_matches(password, hash);
        } catch (...) {
          err = std::current_exception();
        }
        done(err, result);
      });
    });
    ok = known && matches;
    user = std::move(name);
    OPENSSL_cleanse(password.data(), password.size());
  }
  if (ok) {
    cache_->add(key, user, generation);
    verdict.kind = AuthVerdict::Kind::ok;
    verdict.user = std::move(user);
    co_return verdict;
  }
  throttle_->failed(address);
  verdict.kind = AuthVerdict::Kind::invalid;
  co_return verdict;
}

}  // namespace metrics::server
