// Who may read: the web config file (--web-config, Prometheus's
// --web.config.file format where it applies) and the server's own token
// file (--web-tokens), and the WebAuth that checks a request's
// Authorization header against them.
//
//   server::WebConfig cfg = server::load_web_config("web.yml", "tokens.yml");  // throws
//   auto auth = std::make_shared<server::WebAuth>(std::move(cfg));
//   AuthVerdict v = co_await auth->authenticate(req[http::field::authorization], "10.0.0.7");
//   if (!v.ok) ... 401 with auth->challenge()
//   auth->replace(server::load_web_config(...));                               // SIGHUP
//
// The web config file takes the keys of Prometheus 2.42's web config
// (promtool check web-config accepts every file this accepts):
// `basic_auth_users` (name: bcrypt hash, `$2y$`/`$2b$`/`$2a$`, checked with
// libxcrypt's crypt_rn), `tls_server_config` (cert_file and key_file become
// the server's TLS; min_version TLS12/TLS13 is applied; the other TLS keys
// and `http_server_config` are accepted and reported as not applied; a
// client_auth_type that asks for client certificates is refused, since this
// server does not verify them). The token file is YAML with
// `bearer_auth_tokens` (a list of tokens, each either the token itself or
// "sha256:<64 hex>" of it) and `authenticated_writes` (bool, default false:
// a valid user or token also stands in for a missing HashSHA256 on writes).
// It is a separate file because promtool refuses keys it does not know.
//
// Checking: a Basic user's password runs bcrypt on the WebAuth's own small
// pool (never on an I/O thread), and an unknown user runs it against a real
// user's hash, so that the answer time does not tell whether a user exists;
// results compare in constant time. Verified credentials are remembered in
// a bounded cache keyed by an HMAC of them under a per-process random key
// (emptied by replace()), so bcrypt runs once per credential, not per
// request. Tokens compare their SHA-256 digest with every configured one.
// Failures are counted per client address in a fixed-size table (the
// addresses an attacker can use cannot grow it); past a threshold each
// attempt from that address waits its turn, an interval that doubles with
// each failure up to a cap, on a timer of the caller's executor; an address
// whose turn is further off than max_wait is refused at once. The failures
// are logged at most once a log_interval (a minute), with a count: the first
// failure after a quiet interval at once, the ones after it by a thread of
// the WebAuth when the interval is over, on the options' clock (so a test
// sets the time); nothing is logged while there are no failures. The
// throttle's times are that clock's too.
//
// Thread-safe: every member may be called from any thread.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "metrics/core/clock.hpp"

namespace boost::asio {
class thread_pool;
}

namespace metrics::server {

// A bad web config or token file; what() names the file and the reason.
class WebConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct WebTls {
  std::string cert_file;
  std::string key_file;
  std::string min_version;  // "", "TLS12" or "TLS13"
  [[nodiscard]] bool empty() const noexcept { return cert_file.empty() && key_file.empty(); }
};

struct WebConfig {
  std::string source;  // the file names, for logs
  // Sorted by name: (name, bcrypt hash).
  std::vector<std::pair<std::string, std::string>> users;
  // SHA-256 of each bearer token.
  std::vector<std::array<unsigned char, 32>> tokens;
  bool authenticated_writes = false;
  WebTls tls;
  // Keys Prometheus accepts that this server does not apply.
  std::vector<std::string> not_applied;

  // Reads need credentials once there is any user or token.
  [[nodiscard]] bool requires_auth() const noexcept { return !users.empty() || !tokens.empty(); }
};

// Parses the text of a web config file; `name` is used in errors. Throws
// WebConfigError("<name>: <reason>").
[[nodiscard]] WebConfig parse_web_config(std::string_view yaml, std::string_view name);
// Adds the tokens file's settings to `into`. Throws WebConfigError.
void parse_web_tokens(std::string_view yaml, std::string_view name, WebConfig& into);
// Both files (either may be empty: not used). Throws WebConfigError naming
// the file that could not be read or parsed.
[[nodiscard]] WebConfig load_web_config(const std::string& web_config_file,
                                        const std::string& tokens_file);

struct WebAuthOptions {
  std::size_t cache_entries = 1024;   // verified credentials remembered
  std::size_t throttle_slots = 4096;  // addresses whose failures are counted
  unsigned free_failures = 5;         // failures before attempts are spaced out
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{std::chrono::seconds{2}};
  // An address whose next turn is further off is refused at once (429).
  std::chrono::milliseconds max_wait{std::chrono::seconds{4}};
  // Failures older than this are forgotten.
  std::chrono::milliseconds forget_after{std::chrono::minutes{10}};
  std::chrono::milliseconds log_interval{std::chrono::minutes{1}};
  unsigned bcrypt_threads = 2;
  // The failure table's and the summary's clock (null: the real clock).
  std::shared_ptr<core::Clock> clock{};
};

struct AuthVerdict {
  enum class Kind { ok, missing, invalid, throttled };
  Kind kind = Kind::missing;
  std::string user;  // the user name, or "token"
  // For throttled: when to try again.
  std::chrono::seconds retry_after{0};
  [[nodiscard]] bool ok() const noexcept { return kind == Kind::ok; }
};

class WebAuth {
 public:
  explicit WebAuth(WebConfig config, WebAuthOptions options = {});
  ~WebAuth();
  WebAuth(const WebAuth&) = delete;
  WebAuth& operator=(const WebAuth&) = delete;

  // Swaps the users and tokens (a reload); empties the cache. Connections
  // and requests in flight are not affected.
  void replace(WebConfig config);
  [[nodiscard]] std::shared_ptr<const WebConfig> config() const;
  [[nodiscard]] bool required() const;

  // Checks an Authorization header value from `peer` (the client address;
  // may be empty). Resumes on the caller's executor.
  boost::asio::awaitable<AuthVerdict> authenticate(std::string_view authorization,
                                                   std::string_view peer);

  // The WWW-Authenticate value of a 401.
  [[nodiscard]] std::string challenge() const;

  // Waits for the bcrypt jobs in flight and stops the pool, and logs the
  // failures not yet reported. Idempotent.
  void shutdown() noexcept;

  // The failure table (tests, /metrics).
  [[nodiscard]] std::size_t tracked_addresses() const;
  [[nodiscard]] std::size_t throttle_capacity() const noexcept;
  [[nodiscard]] std::uint64_t failures_total() const noexcept;
  [[nodiscard]] std::uint64_t bcrypt_runs() const noexcept;

  // How long an attempt from `peer` would wait now (zero when it would not),
  // nullopt when it would be refused. Does not reserve a turn (tests).
  [[nodiscard]] std::optional<std::chrono::milliseconds> pending_delay(std::string_view peer) const;

 private:
  struct State;
  struct Throttle;
  struct Cache;
  WebAuthOptions options_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Throttle> throttle_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  // Writes the summary of failures when the interval after one is over.
  std::thread reporter_;
  std::mutex shutdown_mu_;
};

// True when `hash` is a bcrypt hash crypt() reads: "$2y$", "$2b$" or
// "$2a$", a two-digit cost 04..31, 53 characters of bcrypt's base64.
[[nodiscard]] bool is_bcrypt_hash(std::string_view hash) noexcept;

// crypt_rn(password, hash) == hash, compared in constant time (blocking:
// bcrypt). False for a malformed hash.
[[nodiscard]] bool bcrypt_matches(std::string_view password, const std::string& hash);

}  // namespace metrics::server
