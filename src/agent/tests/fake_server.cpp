#include "fake_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <stdexcept>

#include "metrics/core/gzip.hpp"
#include "metrics/core/signature.hpp"

namespace metrics::agent::testing {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

bool send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

FakeServer::FakeServer(std::string key, std::uint16_t port) : key_(std::move(key)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen on 127.0.0.1:" + std::to_string(port));
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  handler_ = [](const Request&) { return Reply{}; };
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakeServer::~FakeServer() {
  stop();
}

void FakeServer::stop() {
  if (stop_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> connections;
  {
    const std::lock_guard lock(mu_);
    connections.swap(connections_);
  }
  for (auto& t : connections)
    t.join();
  ::close(listen_fd_);
}

void FakeServer::set_handler(Handler handler) {
  const std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

std::vector<Request> FakeServer::requests() const {
  const std::lock_guard lock(mu_);
  return requests_;
}

std::size_t FakeServer::request_count() const {
  const std::lock_guard lock(mu_);
  return requests_.size();
}

std::size_t FakeServer::connection_count() const {
  const std::lock_guard lock(mu_);
  return connections_.size();
}

bool FakeServer::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

void FakeServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const std::lock_guard lock(mu_);
    connections_.emplace_back([this, fd] { serve(fd); });
  }
}

void FakeServer::serve(int fd) {
  std::string buffer;
  char chunk[16384];
  const auto read_more = [&]() -> bool {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, 20);
      if (r == 0) continue;
      if (r < 0) return false;
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  };
  while (!stop_) {
    std::size_t header_end;
    while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) {
        ::close(fd);
        return;
      }
    }
    Request request;
    request.at = std::chrono::steady_clock::now();
    const std::string head = buffer.substr(0, header_end);
    buffer.erase(0, header_end + 4);
    std::size_t line_end = head.find("\r\n");
    const std::string first = head.substr(0, line_end);
    const std::size_t sp1 = first.find(' ');
    const std::size_t sp2 = first.find(' ', sp1 + 1);
    request.method = first.substr(0, sp1);
    request.path = first.substr(sp1 + 1, sp2 - sp1 - 1);
    while (line_end != std::string::npos && line_end < head.size()) {
      const std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line = head.substr(start, line_end - start);
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ')
        value.erase(0, 1);
      request.headers[lower(line.substr(0, colon))] = value;
    }
    std::size_t length = 0;
    if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
      length = std::stoul(it->second);
    }
    while (buffer.size() < length) {
      if (!read_more()) {
        ::close(fd);
        return;
      }
    }
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);

    Handler handler;
    {
      const std::lock_guard lock(mu_);
      handler = handler_;
    }
    const int now = ++concurrent_;
    int seen = max_concurrent_.load();
    while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
    }
    const Reply reply = handler(request);
    if (reply.delay.count() > 0) std::this_thread::sleep_for(reply.delay);
    --concurrent_;

    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status) +
                      "\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(reply.body.size()) + "\r\n";
    const std::string& sign_key = reply.sign_with.empty() ? key_ : reply.sign_with;
    if (!sign_key.empty()) {
      out += "HashSHA256: " + core::hmac_sha256_hex(sign_key, reply.body) + "\r\n";
    }
    for (const auto& [name, value] : reply.headers)
      out += name + ": " + value + "\r\n";
    out += "\r\n" + reply.body;
    request.answered_status = reply.status;
    {
      const std::lock_guard lock(mu_);
      requests_.push_back(std::move(request));
    }
    cv_.notify_all();
    if (!send_all(fd, out)) break;
  }
  ::close(fd);
}

namespace {

std::string percent_decoded(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<Sent> decode_request(const Request& request) {
  // Text mode: /update/{type}/{name}/{value}, no body.
  if (request.path.starts_with("/update/") && request.path != "/update/") {
    const std::string_view rest = std::string_view(request.path).substr(8);
    const std::size_t a = rest.find('/');
    const std::size_t b = rest.find('/', a + 1);
    if (a == std::string_view::npos || b == std::string_view::npos) {
      throw std::runtime_error("bad text path " + request.path);
    }
    Sent s;
    s.type = std::string(rest.substr(0, a));
    s.id = percent_decoded(rest.substr(a + 1, b - a - 1));
    const std::string value(rest.substr(b + 1));
    if (s.type == "counter") {
      s.delta = std::stoll(value);
    } else {
      s.value = std::stod(value);
    }
    return {s};
  }
  std::string json = request.body;
  if (auto it = request.headers.find("content-encoding");
      it != request.headers.end() && it->second == "gzip") {
    json = core::gzip_decompress(request.body, 64 << 20);
  }
  std::vector<Sent> out;
  boost::json::value doc = boost::json::parse(json);
  // The envelope of POST /updates/: its labels apply to every metric, a
  // metric's own add to them and win (an empty value removes one).
  std::map<std::string, std::string> envelope;
  bool is_envelope = false;
  if (doc.is_object() && doc.as_object().contains("metrics")) {
    is_envelope = true;
    if (const auto* l = doc.as_object().if_contains("labels")) {
      for (const auto& [k, v] : l->as_object())
        envelope[std::string(k)] = std::string(v.as_string());
    }
    boost::json::value metrics = doc.as_object().at("metrics");
    doc = std::move(metrics);
  } else if (doc.is_object()) {
    // JSON mode: one object per request.
    boost::json::array one;
    one.push_back(std::move(doc));
    doc = std::move(one);
  }
  for (const auto& v : doc.as_array()) {
    const auto& o = v.as_object();
    Sent s;
    s.id = std::string(o.at("id").as_string());
    s.type = std::string(o.at("type").as_string());
    if (s.type == "counter") {
      s.delta = o.at("delta").to_number<std::int64_t>();
    } else {
      s.value = o.at("value").to_number<double>();
    }
    s.envelope = is_envelope;
    s.labels = envelope;
    if (const auto* l = o.if_contains("labels")) {
      for (const auto& [k, lv] : l->as_object()) {
        const std::string value(lv.as_string());
        if (value.empty()) {
          s.labels.erase(std::string(k));
        } else {
          s.labels[std::string(k)] = value;
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::int64_t acknowledged_counter_sum(const std::vector<Request>& requests, const std::string& id) {
  std::int64_t sum = 0;
  for (const auto& r : requests) {
    if (r.answered_status < 200 || r.answered_status >= 300) continue;
    for (const auto& m : decode_request(r)) {
      if (m.type == "counter" && m.id == id) sum += m.delta;
    }
  }
  return sum;
}

}  // namespace metrics::agent::testing
