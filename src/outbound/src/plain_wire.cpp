// The built-in HTTP/1.1 client for http:// URLs: what libcurl did for the
// agent's plain requests, with libc only. One kept-alive connection (to the
// last host); answers delimited by Content-Length, chunked coding or the end
// of the connection; 1xx answers skipped; no redirects followed (as libcurl
// without FOLLOWLOCATION). A request on a reused connection that the peer
// had closed is sent once more on a fresh one, as libcurl does, when not a
// byte of an answer came. Everything waits through poll() in slices of at
// most 50 ms until the request's deadline or abort_at, whichever is first.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "metrics/core/signature.hpp"
#include "metrics/core/text.hpp"
#include "wire.hpp"

namespace metrics::outbound::detail {
namespace {

using Clock = std::chrono::steady_clock;

struct Target {
  std::string host;       // without the brackets of an IPv6 literal
  std::string port;       // "80" when the URL gives none
  std::string authority;  // as in the URL: the Host header
  std::string path;       // origin-form request target
};

// How a wait ended.
enum class Waited : std::uint8_t { ready, timeout, aborted, failed };

class Deadline {
 public:
  Deadline(std::chrono::milliseconds timeout, const std::atomic<std::int64_t>* abort_at) noexcept
      : end_(Clock::now() + timeout), abort_at_(abort_at) {}

  // Milliseconds to wait in the next poll (> 0), or the reason to stop.
  [[nodiscard]] std::optional<Waited> stop_reason() const noexcept {
    if (abort_at_ != nullptr && steady_now_ns() > abort_at_->load(std::memory_order_relaxed)) {
      return Waited::aborted;
    }
    if (Clock::now() >= end_) return Waited::timeout;
    return std::nullopt;
  }
  [[nodiscard]] int slice_ms() const noexcept {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end_ - Clock::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(left, 1, 50));
  }
  [[nodiscard]] std::chrono::steady_clock::time_point end() const noexcept { return end_; }

 private:
  Clock::time_point end_;
  const std::atomic<std::int64_t>* abort_at_;
};

Waited wait_for(int fd, short events, const Deadline& deadline) noexcept {
  while (true) {
    if (const auto stop = deadline.stop_reason()) return *stop;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, deadline.slice_ms());
    if (rc > 0) return Waited::ready;  // POLLERR/POLLHUP show in the next call
    if (rc < 0 && errno != EINTR) return Waited::failed;
  }
}

std::string_view stop_text(Waited w) noexcept {
  return w == Waited::aborted ? "Callback aborted" : "Timeout was reached";
}

std::string errno_text(int err) {
  char buffer[128];
  // GNU strerror_r returns the message (maybe not in buffer).
  return ::strerror_r(err, buffer, sizeof buffer);
}

// getaddrinfo bounded by the deadline: numeric hosts directly, names through
// getaddrinfo_a (a lookup that outlives the deadline is cancelled or, when
// glibc cannot cancel it any more, left to finish with its memory).
struct AddrInfoDeleter {
  void operator()(addrinfo* a) const noexcept { ::freeaddrinfo(a); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

AddrInfoPtr resolve(const Target& target, const Deadline& deadline, std::string& error,
                    std::optional<Waited>& stopped) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &found);
  if (rc == 0) return AddrInfoPtr(found);
  if (rc != EAI_NONAME) {
    error = std::string("Couldn't resolve host name (") + ::gai_strerror(rc) + ")";
    return nullptr;
  }
  struct Lookup {
    addrinfo hints{};
    std::string host;
    std::string port;
    gaicb cb{};
  };
  auto lookup = std::make_unique<Lookup>();
  lookup->hints = hints;
  lookup->hints.ai_flags = AI_NUMERICSERV;
  lookup->host = target.host;
  lookup->port = target.port;
  lookup->cb.ar_name = lookup->host.c_str();
  lookup->cb.ar_service = lookup->port.c_str();
  lookup->cb.ar_request = &lookup->hints;
  gaicb* list[1] = {&lookup->cb};
  rc = ::getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr);
  if (rc != 0) {
    error = std::string("Couldn't resolve host name (") + ::gai_strerror(rc) + ")";
    return nullptr;
  }
  while (::gai_error(&lookup->cb) == EAI_INPROGRESS) {
    if (const auto stop = deadline.stop_reason()) {
      stopped = stop;
      error = std::string(stop_text(*stop)) + " (resolving " + target.host + ")";
      const int cancelled = ::gai_cancel(&lookup->cb);
      if (cancelled == EAI_ALLDONE) {
        if (lookup->cb.ar_result != nullptr) ::freeaddrinfo(lookup->cb.ar_result);
      } else if (cancelled != EAI_CANCELED) {
        (void)lookup.release();  // still written to by glibc's resolver thread
      }
      return nullptr;
    }
    timespec slice{0, static_cast<long>(deadline.slice_ms()) * 1'000'000L};
    (void)::gai_suspend(list, 1, &slice);
  }
  rc = ::gai_error(&lookup->cb);
  if (rc != 0) {
    error = std::string("Couldn't resolve host name (") + ::gai_strerror(rc) + ")";
    return nullptr;
  }
  return AddrInfoPtr(lookup->cb.ar_result);
}

bool ieq_prefix(std::string_view text, std::string_view prefix) noexcept {
  return text.size() >= prefix.size() && core::iequals(text.substr(0, prefix.size()), prefix);
}

std::optional<Target> parse_plain_url(std::string_view url) {
  if (!ieq_prefix(url, "http://")) return std::nullopt;
  url.remove_prefix(7);
  const std::size_t end = url.find_first_of("/?#");
  const std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? "" : url.substr(end);
  rest = rest.substr(0, rest.find('#'));
  // User info in the URL and anything odd: libcurl's business.
  if (authority.empty() || authority.find_first_of("@ \t\r\n%") != std::string_view::npos) {
    return std::nullopt;
  }
  if (rest.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
  Target t;
  t.authority = authority;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (port.empty()) {
    t.port = "80";
  } else {
    unsigned value = 0;
    const auto [p, e] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (e != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    t.port = std::to_string(value);
  }
  t.host = host;
  t.path = rest.empty() ? "/" : rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
  return t;
}

class PlainWire final : public Wire {
 public:
  ~PlainWire() override { disconnect(); }

  void exchange(const Exchange& exchange, Response& response,
                std::string& signature) noexcept override {
    try {
      run(exchange, response, signature);
    } catch (const std::exception& e) {
      disconnect();
      response.transport = sent_any_ ? Transport::unknown : Transport::not_sent;
      response.error = e.what();
    }
  }

 private:
  // Why an attempt ended without an answer.
  enum class Failure : std::uint8_t { none, connect, closed_early, other };

  void run(const Exchange& exchange, Response& response, std::string& signature) {
    sent_any_ = false;
    const auto target = parse_plain_url(exchange.url);
    if (!target) {
      response.transport = Transport::not_sent;
      response.error = "URL not supported by the built-in client";
      return;
    }
    const Deadline deadline(exchange.timeout, exchange.abort_at);
    std::string head = request_head(*target, exchange);
    for (int attempt = 0; attempt < 2; ++attempt) {
      response.status = 0;
      response.body.clear();
      response.retry_after.clear();
      response.error.clear();
      signature.clear();
      const bool reused = reuse_or_drop(*target);
      if (!reused) {
        if (!connect_to(*target, deadline, response.error)) {
          response.transport = sent_any_ ? Transport::unknown : Transport::not_sent;
          return;
        }
      }
      const Failure failure = attempt_once(head, exchange, deadline, response, signature);
      if (failure == Failure::none) {
        response.transport = Transport::answered;
        return;
      }
      disconnect();
      // A kept-alive connection the peer had closed: like libcurl, once more
      // on a fresh connection.
      if (reused && failure == Failure::closed_early && attempt == 0) continue;
      response.transport = sent_any_ ? Transport::unknown : Transport::not_sent;
      return;
    }
  }

  static std::string request_head(const Target& target, const Exchange& exchange) {
    std::string head = "POST " + target.path + " HTTP/1.1\r\n";
    bool has_host = false;
    bool has_accept = false;
    bool has_type = false;
    std::string extra;
    if (exchange.headers != nullptr) {
      for (const auto& line : *exchange.headers) {
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string_view name = core::trim(std::string_view(line).substr(0, colon));
        const std::string_view value = core::trim(std::string_view(line).substr(colon + 1));
        if (name.empty() || name.find_first_of("\r\n") != std::string_view::npos ||
            value.find_first_of("\r\n") != std::string_view::npos) {
          continue;
        }
        has_host = has_host || core::iequals(name, "Host");
        has_accept = has_accept || core::iequals(name, "Accept");
        has_type = has_type || core::iequals(name, "Content-Type");
        if (core::iequals(name, "Content-Length") || core::iequals(name, "Transfer-Encoding")) {
          continue;  // framing is ours
        }
        if (value.empty()) continue;  // "Name:" removes a default, as with libcurl
        extra.append(name).append(": ").append(value).append("\r\n");
      }
    }
    if (!has_host) head += "Host: " + target.authority + "\r\n";
    if (!has_accept) head += "Accept: */*\r\n";
    // libcurl's default for a POST body.
    if (!has_type) head += "Content-Type: application/x-www-form-urlencoded\r\n";
    head += extra;
    head += "Content-Length: " + std::to_string(exchange.body.size()) + "\r\n\r\n";
    return head;
  }

  // True when the open connection goes to the target and the peer has
  // neither closed it nor sent anything unasked.
  bool reuse_or_drop(const Target& target) noexcept {
    if (fd_ < 0) return false;
    if (host_ != target.host || port_ != target.port || !buffer_.empty()) {
      disconnect();
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) != 0) {
      disconnect();
      return false;
    }
    return true;
  }

  bool connect_to(const Target& target, const Deadline& deadline, std::string& error) {
    std::optional<Waited> stopped;
    const AddrInfoPtr addresses = resolve(target, deadline, error, stopped);
    if (!addresses) return false;
    int last_errno = 0;
    for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        last_errno = errno;
        continue;
      }
      const int one = 1;
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        const Waited w = wait_for(fd, POLLOUT, deadline);
        if (w == Waited::timeout || w == Waited::aborted) {
          ::close(fd);
          error = std::string(stop_text(w)) + " (connecting to " + target.authority + ")";
          return false;
        }
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (w == Waited::failed || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
          so_error = errno;
        }
        rc = so_error == 0 ? 0 : -1;
        errno = so_error;
      }
      if (rc == 0) {
        fd_ = fd;
        host_ = target.host;
        port_ = target.port;
        buffer_.clear();
        return true;
      }
      last_errno = errno;
      ::close(fd);
    }
    error = "Couldn't connect to server (" + errno_text(last_errno) + ")";
    return false;
  }

  void disconnect() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  }

  // Sends head and body; false with *error on failure.
  bool send_all(std::string_view head, std::string_view body, const Deadline& deadline,
                std::string& error, bool& peer_closed) {
    std::size_t done = 0;
    const std::size_t total = head.size() + body.size();
    while (done < total) {
      iovec parts[2];
      int count = 0;
      if (done < head.size()) {
        parts[count++] = {const_cast<char*>(head.data() + done), head.size() - done};
      }
      const std::size_t body_done = done > head.size() ? done - head.size() : 0;
      if (body_done < body.size()) {
        parts[count++] = {const_cast<char*>(body.data() + body_done), body.size() - body_done};
      }
      msghdr msg{};
      msg.msg_iov = parts;
      msg.msg_iovlen = static_cast<std::size_t>(count);
      const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        sent_any_ = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const Waited w = wait_for(fd_, POLLOUT, deadline);
        if (w == Waited::ready) continue;
        error = w == Waited::failed ? "Send failure" : std::string(stop_text(w));
        return false;
      }
      peer_closed = errno == EPIPE || errno == ECONNRESET;
      error = "Send failure (" + errno_text(errno) + ")";
      return false;
    }
    return true;
  }

  // Appends what arrives to buffer_: > 0 bytes read, 0 at the end of the
  // connection, < 0 on error (error set; *reset when the peer reset it).
  ssize_t receive(const Deadline& deadline, std::string& error, bool& reset) {
    while (true) {
      char chunk[16384];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return n;
      }
      if (n == 0) return 0;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        const Waited w = wait_for(fd_, POLLIN, deadline);
        if (w == Waited::ready) continue;
        error = w == Waited::failed ? "Recv failure" : std::string(stop_text(w));
        return -1;
      }
      reset = errno == ECONNRESET;
      error = "Recv failure (" + errno_text(errno) + ")";
      return -1;
    }
  }

  Failure attempt_once(const std::string& head, const Exchange& exchange, const Deadline& deadline,
                       Response& response, std::string& signature) {
    bool peer_closed = false;
    if (!send_all(head, exchange.body, deadline, response.error, peer_closed)) {
      return peer_closed ? Failure::closed_early : Failure::other;
    }
    bool received_any = false;
    const auto fail_read = [&](ssize_t n, bool reset) {
      if (n == 0) response.error = "Empty reply from server";
      if (n == 0 && received_any) response.error = "Transferred a partial file";
      return !received_any && (n == 0 || reset) ? Failure::closed_early : Failure::other;
    };
    const auto fill = [&]() -> ssize_t {
      bool reset = false;
      const ssize_t n = receive(deadline, response.error, reset);
      if (n > 0) received_any = true;
      if (n <= 0) last_reset_ = reset;
      return n;
    };
    // Status line and headers; 1xx answers are skipped.
    while (true) {
      std::size_t end = std::string::npos;
      std::size_t body_start = 0;
      while (true) {
        const std::size_t crlf = buffer_.find("\r\n\r\n");
        const std::size_t lf = buffer_.find("\n\n");
        if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) {
          end = crlf;
          body_start = crlf + 4;
        } else if (lf != std::string::npos) {
          end = lf;
          body_start = lf + 2;
        }
        if (end != std::string::npos) break;
        if (buffer_.size() > kMaxHeaderBytes) {
          response.error = "answer header larger than " + std::to_string(kMaxHeaderBytes);
          return Failure::other;
        }
        const ssize_t n = fill();
        if (n <= 0) return fail_read(n, last_reset_);
      }
      Parsed parsed;
      if (!parse_head(std::string_view(buffer_).substr(0, end), parsed)) {
        response.error = "Weird server reply";
        return Failure::other;
      }
      buffer_.erase(0, body_start);
      if (parsed.status >= 100 && parsed.status < 200 && parsed.status != 101) continue;
      response.status = parsed.status;
      response.retry_after = parsed.retry_after;
      signature = parsed.signature;
      const bool no_body = parsed.status == 204 || parsed.status == 304 ||
                           (parsed.status >= 100 && parsed.status < 200);
      bool delimited = true;
      if (no_body) {
        // nothing
      } else if (parsed.chunked) {
        if (!read_chunked(exchange, response, fill)) return Failure::other;
      } else if (parsed.content_length) {
        if (*parsed.content_length > exchange.max_answer_bytes) {
          response.error =
              "answer larger than " + std::to_string(exchange.max_answer_bytes) + " bytes";
          return Failure::other;
        }
        while (buffer_.size() < *parsed.content_length) {
          const ssize_t n = fill();
          if (n == 0) response.error = "Transferred a partial file";
          if (n <= 0) return Failure::other;
        }
        response.body = buffer_.substr(0, *parsed.content_length);
        buffer_.erase(0, *parsed.content_length);
      } else {
        delimited = false;
        while (true) {
          if (buffer_.size() > exchange.max_answer_bytes) {
            response.error =
                "answer larger than " + std::to_string(exchange.max_answer_bytes) + " bytes";
            return Failure::other;
          }
          const ssize_t n = fill();
          if (n == 0) break;
          if (n < 0) return Failure::other;
        }
        response.body = std::move(buffer_);
        buffer_.clear();
      }
      const bool keep = delimited && parsed.status != 101 &&
                        (parsed.http11 ? !parsed.connection_close : parsed.keep_alive);
      if (!keep) disconnect();
      return Failure::none;
    }
  }

  struct Parsed {
    long status = 0;
    bool http11 = true;
    bool chunked = false;
    bool connection_close = false;
    bool keep_alive = false;
    std::optional<std::size_t> content_length;
    std::string retry_after;
    std::string signature;
  };

  static bool parse_head(std::string_view head, Parsed& out) {
    const std::size_t first_end = head.find('\n');
    std::string_view status_line = head.substr(0, first_end);
    if (status_line.ends_with('\r')) status_line.remove_suffix(1);
    // "HTTP/1.1 200 OK"
    if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
      return false;
    }
    out.http11 = status_line[7] != '0';
    const std::string_view code = status_line.substr(9, 3);
    int status = 0;
    const auto [ptr, ec] = std::from_chars(code.data(), code.data() + code.size(), status);
    if (ec != std::errc{} || ptr != code.data() + code.size() || status < 100 || status > 999) {
      return false;
    }
    if (status_line.size() > 12 && status_line[12] != ' ') return false;
    out.status = status;
    std::string_view rest = first_end == std::string_view::npos ? "" : head.substr(first_end + 1);
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
      if (line.ends_with('\r')) line.remove_suffix(1);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = core::trim(line.substr(0, colon));
      const std::string_view value = core::trim(line.substr(colon + 1));
      if (core::iequals(name, "Content-Length")) {
        std::size_t length = 0;
        const auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), length);
        if (e != std::errc{} || p != value.data() + value.size()) return false;
        if (out.content_length && *out.content_length != length) return false;
        out.content_length = length;
      } else if (core::iequals(name, "Transfer-Encoding")) {
        // The last coding decides (RFC 9112 6.1); only chunked is known.
        std::string_view last = value.substr(value.rfind(',') + 1);
        last = core::trim(last);
        if (core::iequals(last, "chunked")) {
          out.chunked = true;
        } else if (!core::iequals(last, "identity")) {
          return false;
        }
      } else if (core::iequals(name, "Connection")) {
        for (std::string_view token = value; !token.empty();) {
          const std::size_t comma = token.find(',');
          const std::string_view one = core::trim(token.substr(0, comma));
          if (core::iequals(one, "close")) out.connection_close = true;
          if (core::iequals(one, "keep-alive")) out.keep_alive = true;
          token = comma == std::string_view::npos ? "" : token.substr(comma + 1);
        }
      } else if (core::iequals(name, core::kSignatureHeader)) {
        out.signature.assign(value);
      } else if (core::iequals(name, "Retry-After")) {
        out.retry_after.assign(value);
      }
    }
    return true;
  }

  template <typename Fill>
  bool read_chunked(const Exchange& exchange, Response& response, Fill& fill) {
    const auto need_line = [&](std::size_t& eol) {
      while ((eol = buffer_.find('\n')) == std::string::npos) {
        if (buffer_.size() > kMaxHeaderBytes) return false;
        const ssize_t n = fill();
        if (n == 0) response.error = "Transferred a partial file";
        if (n <= 0) return false;
      }
      return true;
    };
    while (true) {
      std::size_t eol = 0;
      if (!need_line(eol)) return false;
      std::string_view size_text = std::string_view(buffer_).substr(0, eol);
      size_text = size_text.substr(0, size_text.find(';'));
      size_text = core::trim(size_text);
      while (!size_text.empty() && size_text.back() == '\r')
        size_text.remove_suffix(1);
      std::size_t size = 0;
      const auto [p, e] =
          std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
      if (size_text.empty() || e != std::errc{} || p != size_text.data() + size_text.size()) {
        response.error = "Problem (3) in the Chunked-Encoded data";
        return false;
      }
      buffer_.erase(0, eol + 1);
      if (size == 0) break;
      if (size > exchange.max_answer_bytes ||
          response.body.size() + size > exchange.max_answer_bytes) {
        response.error =
            "answer larger than " + std::to_string(exchange.max_answer_bytes) + " bytes";
        return false;
      }
      while (buffer_.size() < size + 2) {
        const ssize_t n = fill();
        if (n == 0) response.error = "Transferred a partial file";
        if (n <= 0) return false;
      }
      response.body.append(buffer_, 0, size);
      if (buffer_.compare(size, 2, "\r\n") != 0) {
        response.error = "Problem (2) in the Chunked-Encoded data";
        return false;
      }
      buffer_.erase(0, size + 2);
    }
    // Trailer lines up to the empty one.
    while (true) {
      std::size_t eol = 0;
      if (!need_line(eol)) return false;
      const bool empty = eol == 0 || (eol == 1 && buffer_[0] == '\r');
      buffer_.erase(0, eol + 1);
      if (empty) return true;
    }
  }

  static constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

  int fd_ = -1;
  std::string host_;
  std::string port_;
  std::string buffer_;  // received, not yet consumed
  bool sent_any_ = false;
  bool last_reset_ = false;
};

}  // namespace

std::unique_ptr<Wire> make_plain_wire() {
  return std::make_unique<PlainWire>();
}

bool plain_url_supported(std::string_view url) {
  return parse_plain_url(url).has_value();
}

bool http_proxy_configured() noexcept {
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

}  // namespace metrics::outbound::detail
