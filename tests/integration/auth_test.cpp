// Who may read (--web-config, --web-tokens) over real sockets: every read
// endpoint with no, wrong and right credentials, /ping open, writes under
// the signature rules, a reload that swaps users under a kept-alive
// connection, a bad file at start, and the real promtool accepting every
// file the server accepts here.
#include <crypt.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/core/authorization.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/server/web_auth.hpp"
#include "process_support.hpp"
#include "test_support.hpp"

namespace metrics::testing {
namespace {

namespace fs = std::filesystem;

std::string make_hash(const std::string& password, const char* prefix = "$2y$",
                      unsigned long cost = 4) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn(prefix, cost, nullptr, 0, salt, sizeof salt) == nullptr) return {};
  crypt_data data{};
  const char* out = crypt_rn(password.c_str(), salt, &data, sizeof data);
  return out != nullptr ? out : "";
}

std::string basic(const std::string& user, const std::string& password) {
  return core::authorization_value(user + ":" + password, "");
}

// Runs a command; its exit status and what it printed (stdout and stderr).
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr)
    out += buf.data();
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A kept-alive connection from a loopback address of its own (127.0.0.N),
// so that the failures of one test step do not count against another's
// address in the failure throttle.
class BoundClient {
 public:
  BoundClient(std::uint16_t port, unsigned char last_octet) : stream_(ioc_) {
    namespace ip = boost::asio::ip;
    auto& socket = stream_.socket();
    socket.open(ip::tcp::v4());
    socket.bind({ip::make_address_v4(std::array<unsigned char, 4>{127, 0, 0, last_octet}), 0});
    stream_.connect(ip::tcp::endpoint(ip::address_v4::loopback(), port));
  }
  Response send(Request req) {
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    req.prepare_payload();
    http::write(stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream_, buffer_, parser);
    return parser.release();
  }

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("metrics-auth-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // A throwaway certificate for the tls_server_config files (promtool
    // loads it too).
    ASSERT_EQ(std::system(("cd '" + dir_.string() +
                           "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout server.key "
                           "-out server.crt -days 1 -subj /CN=127.0.0.1 2>/dev/null")
                              .c_str()),
              0);
    alice_hash_ = make_hash("alice-secret");
    bob_hash_ = make_hash("bob-secret", "$2b$");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // Writes a file in the test dir; every web config also goes through the
  // real promtool below.
  static std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  static std::string users_file(const std::string& name = "web.yml") {
    // The layout of the examples in Prometheus's web configuration docs.
    return write(name, "basic_auth_users:\n  alice: " + alice_hash_ + "\n");
  }
  static std::string tokens_file(bool authenticated_writes = false) {
    return write("tokens.yml", std::string("bearer_auth_tokens:\n  - script-token-0123456789\n") +
                                   (authenticated_writes ? "authenticated_writes: true\n" : ""));
  }
  static server::ServerConfig config(const std::string& web, const std::string& tokens = {}) {
    auto c = TestServer::default_config();
    c.web_config = web;
    c.web_tokens = tokens;
    return c;
  }

  static Response get(Client& client, const std::string& target, const std::string& auth) {
    Request req{http::verb::get, target, 11};
    if (!auth.empty()) req.set(http::field::authorization, auth);
    return client.send(std::move(req));
  }
  static Response post_json(Client& client, const std::string& target, const std::string& body,
                            const std::string& auth) {
    Request req{http::verb::post, target, 11};
    req.set(http::field::content_type, "application/json");
    if (!auth.empty()) req.set(http::field::authorization, auth);
    req.body() = body;
    return client.send(std::move(req));
  }

  static inline fs::path dir_;
  static inline std::string alice_hash_;
  static inline std::string bob_hash_;
};

// Every read endpoint of the route table, with what a right answer is.
struct Read {
  http::verb method;
  std::string target;
  std::string body;
};
const std::vector<Read>& reads() {
  static const std::vector<Read> r = {
      {http::verb::get, "/", ""},
      {http::verb::get, "/ui/", ""},
      {http::verb::get, "/ui/app.js", ""},
      {http::verb::get, "/metrics", ""},
      {http::verb::get, "/value/counter/hits", ""},
      {http::verb::post, "/value/", R"({"id":"hits","type":"counter"})"},
      {http::verb::get, "/api/v1/query?query=1", ""},
      {http::verb::post, "/api/v1/query?query=1", ""},
      {http::verb::get, "/api/v1/query_range?query=1&start=0&end=60&step=15", ""},
      {http::verb::get, "/api/v1/series?match[]=hits", ""},
      {http::verb::get, "/api/v1/labels", ""},
      {http::verb::get, "/api/v1/label/__name__/values", ""},
      {http::verb::get, "/api/v1/metadata", ""},
      {http::verb::get, "/api/v1/status/buildinfo", ""},
      {http::verb::get, "/api/v1/rules", ""},
      {http::verb::get, "/api/v1/alerts", ""},
  };
  return r;
}

Response send_read(BoundClient& client, const Read& r, const std::string& auth) {
  Request req{r.method, r.target, 11};
  if (r.method == http::verb::post && !r.body.empty()) {
    req.set(http::field::content_type, "application/json");
  }
  req.body() = r.body;
  if (!auth.empty()) req.set(http::field::authorization, auth);
  return client.send(std::move(req));
}

TEST_F(AuthTest, EveryReadEndpointWithNoWrongAndRightCredentials) {
  TestServer server(config(users_file(), tokens_file()));
  ASSERT_EQ(Client(server.port()).post("/update/counter/hits/3").result_int(),
            200);  // writes stay open
  unsigned char octet = 10;
  for (const auto& r : reads()) {
    SCOPED_TRACE(r.target);
    // Four failures per endpoint, each endpoint from its own address: below
    // the throttle's free failures (RepeatedFailures... tests the throttle).
    BoundClient client(server.port(), octet++);
    auto res = send_read(client, r, "");
    EXPECT_EQ(res.result_int(), 401);
    EXPECT_EQ(res[http::field::www_authenticate],
              R"(Basic realm="metrics-server", charset="UTF-8")");
    EXPECT_EQ(res.body().find("hits"), std::string::npos);
    const auto wrong_password = send_read(client, r, basic("alice", "alice-secreT"));
    const auto unknown_user = send_read(client, r, basic("mallory", "alice-secret"));
    EXPECT_EQ(wrong_password.result_int(), 401);
    EXPECT_EQ(unknown_user.result_int(), 401);
    // No hint whether the user exists: the same answer for both.
    EXPECT_EQ(wrong_password.body(), unknown_user.body());
    EXPECT_EQ(send_read(client, r, "Bearer script-token-012345678X").result_int(), 401);
    EXPECT_EQ(send_read(client, r, "Digest username=alice").result_int(), 401);
    res = send_read(client, r, basic("alice", "alice-secret"));
    EXPECT_EQ(res.result_int(), 200) << res.body();
    res = send_read(client, r, "Bearer script-token-0123456789");
    EXPECT_EQ(res.result_int(), 200) << res.body();
  }
  Client client(server.port());
  EXPECT_EQ(get(client, "/value/counter/hits", basic("alice", "alice-secret")).body(), "3");
  // The health check stays open.
  EXPECT_EQ(get(client, "/ping", "").result_int(), 200);
  // Four failures per endpoint, each counted (missing credentials are not).
  const auto metrics = get(client, "/metrics", basic("alice", "alice-secret")).body();
  EXPECT_NE(metrics.find("\nmetrics_server_auth_failures_total " +
                         std::to_string(4 * reads().size()) + "\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("\nmetrics_server_auth_tracked_addresses " +
                         std::to_string(reads().size()) + "\n"),
            std::string::npos);
}

TEST_F(AuthTest, WritesKeepTheSignatureRules) {
  const std::string key = "k3y";
  const std::string body = R"({"id":"w","type":"counter","delta":1})";
  const std::string sig = core::hmac_sha256_hex(key, body);
  {
    auto c = config(users_file(), tokens_file(false));
    c.key = key;
    TestServer server(c);
    Client client(server.port());
    // Signed: no credentials needed. Authenticated but unsigned: refused.
    Request signed_req{http::verb::post, "/update/", 11};
    signed_req.set(http::field::content_type, "application/json");
    signed_req.set(core::kSignatureHeader, sig);
    signed_req.body() = body;
    EXPECT_EQ(client.send(signed_req).result_int(), 200);
    auto res = post_json(client, "/update/", body, basic("alice", "alice-secret"));
    EXPECT_EQ(res.result_int(), 401);
    EXPECT_NE(res.body().find("HashSHA256"), std::string::npos);
  }
  {
    // authenticated_writes: a valid user or token stands in for the signature.
    auto c = config(users_file(), tokens_file(true));
    c.key = key;
    TestServer server(c);
    Client client(server.port());
    EXPECT_EQ(post_json(client, "/update/", body, basic("alice", "alice-secret")).result_int(),
              200);
    EXPECT_EQ(post_json(client, "/update/", body, "Bearer script-token-0123456789").result_int(),
              200);
    EXPECT_EQ(post_json(client, "/update/", body, basic("alice", "nope")).result_int(), 401);
    EXPECT_EQ(post_json(client, "/update/", body, "").result_int(), 401);
  }
}

TEST_F(AuthTest, ReloadSwapsUsersWithoutDroppingTheConnection) {
  const auto web = users_file("reload.yml");
  TestServer server(config(web));
  Client client(server.port());
  EXPECT_EQ(get(client, "/metrics", basic("alice", "alice-secret")).result_int(), 200);
  EXPECT_EQ(get(client, "/metrics", basic("bob", "bob-secret")).result_int(), 401);

  write("reload.yml", "basic_auth_users:\n  bob: " + bob_hash_ + "\n");
  EXPECT_EQ(server.server().reload_web_config(), std::nullopt);
  // The same kept-alive connection: alice (cached before) is out, bob is in.
  EXPECT_EQ(get(client, "/metrics", basic("alice", "alice-secret")).result_int(), 401);
  EXPECT_EQ(get(client, "/metrics", basic("bob", "bob-secret")).result_int(), 200);
  EXPECT_EQ(server.server().connections(), 1u);

  // A bad file keeps the users in use, and the reason names the file.
  write("reload.yml", "basic_auth_users:\n  bob: plaintext\n");
  const auto error = server.server().reload_web_config();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find(web), std::string::npos) << *error;
  EXPECT_NE(error->find("bcrypt"), std::string::npos) << *error;
  EXPECT_EQ(get(client, "/metrics", basic("bob", "bob-secret")).result_int(), 200);
}

TEST_F(AuthTest, RepeatedFailuresFromOneAddressAreSlowedDown) {
  TestServer server(config(users_file()));
  Client client(server.port());
  // The first failures are answered at bcrypt speed; past the free ones,
  // attempts from this address take turns that grow (200 ms, 400 ms, ...).
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(get(client, "/metrics", basic("alice", "guess" + std::to_string(i))).result_int(),
              401);
  const auto free_time = std::chrono::steady_clock::now() - t0;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(get(client, "/metrics", basic("alice", "more" + std::to_string(i))).result_int(),
              401);
  const auto slowed = std::chrono::steady_clock::now() - t1;
  EXPECT_GE(slowed, std::chrono::milliseconds{550});  // 200 + 400 (the first turn is now)
  EXPECT_LT(free_time, slowed);
  // Meanwhile another request on another connection is not held up.
  Client other(server.port());
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(get(other, "/ping", "").result_int(), 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t2, std::chrono::milliseconds{200});
}

TEST_F(AuthTest, TlsFromTheWebConfig) {
  const std::string d = dir_.string();
  const auto web = write("tls.yml",
                         "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                         "  min_version: TLS12\nbasic_auth_users:\n  alice: " +
                             alice_hash_ + "\n");
  TestServer server(config(web));
  // Plain HTTP to the TLS port gets no HTTP answer: the port speaks TLS.
  Client plain(server.port());
  EXPECT_ANY_THROW(plain.get("/ping"));
  // Set twice (flags and file): refused at start.
  auto twice = config(web);
  twice.tls_cert = d + "/server.crt";
  twice.tls_key = d + "/server.key";
  storage::MemoryRepository repo;
  EXPECT_THROW({ server::Server s(twice, repo); }, std::exception);
}

TEST_F(AuthTest, BadFileAtStartStopsTheServerNamingTheFileAndReason) {
  const auto bad = write("bad.yml", "basic_auth_users:\n  alice: hunter2\n");
  const auto [status, out] = run("env -i PATH=/usr/bin:/bin " METRICS_SERVER_BINARY
                                 " -a 127.0.0.1:0 -f '' --history-dir '' --web-config " +
                                 bad);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find(bad), std::string::npos) << out;
  EXPECT_NE(out.find("not a bcrypt hash"), std::string::npos) << out;
  const auto [status2, out2] = run("env -i PATH=/usr/bin:/bin " METRICS_SERVER_BINARY
                                   " -a 127.0.0.1:0 -f '' --history-dir '' --web-config " +
                                   (dir_ / "missing.yml").string());
  EXPECT_EQ(status2, 2) << out2;
  EXPECT_NE(out2.find("missing.yml: cannot read"), std::string::npos) << out2;
}

// The real process: SIGHUP swaps the users while a kept-alive connection
// stays open; a bad file at SIGHUP keeps the old users and says so.
TEST_F(AuthTest, SighupReloadsTheRealProcess) {
  const auto web = users_file("hup.yml");
  const auto log = (dir_ / "hup.log").string();
  ServerProcess proc({"-f", "", "--web-config", web}, log);
  ASSERT_TRUE(proc.wait_ready());
  Client client(proc.port());
  EXPECT_EQ(get(client, "/metrics", basic("alice", "alice-secret")).result_int(), 200);
  write("hup.yml", "basic_auth_users:\n  bob: " + bob_hash_ + "\n");
  ::kill(proc.pid(), SIGHUP);
  bool swapped = false;
  for (int i = 0; i < 200 && !swapped; ++i) {
    swapped = get(client, "/metrics", basic("bob", "bob-secret")).result_int() == 200;
    if (!swapped) std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  EXPECT_TRUE(swapped);
  EXPECT_EQ(get(client, "/metrics", basic("alice", "alice-secret")).result_int(), 401);
  write("hup.yml", "basic_auth_users: [\n");
  ::kill(proc.pid(), SIGHUP);
  std::string text;
  for (int i = 0; i < 200 && text.find("reload failed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
    std::ifstream in(log);
    std::stringstream all;
    all << in.rdbuf();
    text = all.str();
  }
  EXPECT_NE(
      text.find("web config: reload failed, keeping the old users, tokens and certificate: " + web),
      std::string::npos)
      << text;
  EXPECT_EQ(get(client, "/metrics", basic("bob", "bob-secret")).result_int(), 200);
  EXPECT_EQ(WEXITSTATUS(proc.stop(SIGTERM)), 0);
}

// The real promtool (Debian's prometheus package) accepts every web config
// the server accepts in these tests, and refuses the token file (which is
// why tokens live in a file of their own).
TEST_F(AuthTest, PromtoolAcceptsEveryWebConfigTheServerAccepts) {
  const std::string promtool = METRICS_PROMTOOL;
  if (promtool.empty()) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") FAIL() << "promtool is not installed";
    GTEST_SKIP() << "promtool is not installed";
  }
  // Written in the layout of the examples of Prometheus's docs.
  std::vector<std::string> files = {
      users_file("p1.yml"),
      write("p2.yml", "basic_auth_users:\n  alice: " + alice_hash_ + "\n  bob: " + bob_hash_ +
                          "\n  carol: " + make_hash("carol", "$2y$", 10) + "\n"),
      write("p3.yml", ""),
      write("p4.yml", "http_server_config:\n  http2: false\nbasic_auth_users:\n  alice: " +
                          alice_hash_ + "\n"),
  };
  files.push_back(write("p5.yml",
                        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                        "  client_auth_type: NoClientCert\n  min_version: TLS13\n"
                        "basic_auth_users:\n  alice: " +
                            alice_hash_ + "\n"));
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NO_THROW((void)server::parse_web_config(text.str(), f));  // the server accepts it
    const auto [status, out] = run(promtool + " check web-config " + f);
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
  }
  // The token file is not a Prometheus web config: promtool refuses it, and
  // the server refuses its keys in the web config too.
  const auto tokens = tokens_file();
  EXPECT_NE(run(promtool + " check web-config " + tokens).first, 0);
  EXPECT_THROW((void)server::load_web_config(tokens, ""), server::WebConfigError);
}

}  // namespace
}  // namespace metrics::testing
