// A tiny blocking HTTP/1.1 server on 127.0.0.1 for the agent's tests: one
// thread per connection, keep-alive, Content-Length bodies only. Each
// request goes to a handler that decides the answer; the server records
// every request and the most requests it saw being handled at once.
//
// Thread-safe. Every wait is bounded (poll timeouts of 20 ms).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace metrics::agent::testing {

struct Request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;                            // as received
  std::chrono::steady_clock::time_point at;
  int answered_status = 0;
};

struct Reply {
  int status = 200;
  std::string body = "[]";
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};
  // Signs with this key instead of the server's (empty: the server's).
  std::string sign_with;
};

// A reply with just a status (and body).
inline Reply status_reply(int status, std::string body = "[]") {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

class FakeServer {
 public:
  using Handler = std::function<Reply(const Request&)>;

  // key: when set, every answer carries HashSHA256 of its body. port 0 picks
  // a free one.
  explicit FakeServer(std::string key = "", std::uint16_t port = 0);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void set_handler(Handler handler);
  [[nodiscard]] std::vector<Request> requests() const;
  [[nodiscard]] std::size_t request_count() const;
  [[nodiscard]] int max_concurrent() const noexcept { return max_concurrent_.load(); }
  // Connections accepted so far (keep-alive reuses one).
  [[nodiscard]] std::size_t connection_count() const;
  // Waits until at least n requests were answered; false on timeout.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  std::string key_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Handler handler_;
  std::vector<Request> requests_;
  std::thread acceptor_;
  std::vector<std::thread> connections_;
};

// Helpers for reading what the agent sent.
struct Sent {
  std::string id;
  std::string type;
  std::int64_t delta = 0;
  double value = 0;
  // The series' labels as the server reads them: the envelope's with the
  // metric's own on top (text mode: none).
  std::map<std::string, std::string> labels;
  bool envelope = false;  // it came in a {"labels":..,"metrics":[..]} envelope
  [[nodiscard]] std::string label(const std::string& name) const {
    const auto it = labels.find(name);
    return it == labels.end() ? std::string() : it->second;
  }
};
// gunzips (when Content-Encoding says so) and parses a batch (an array, an
// envelope, or one JSON metric) or a text path; throws on junk.
std::vector<Sent> decode_request(const Request& request);
// Sum of a counter over the acknowledged (2xx) requests.
std::int64_t acknowledged_counter_sum(const std::vector<Request>& requests, const std::string& id);

}  // namespace metrics::agent::testing
