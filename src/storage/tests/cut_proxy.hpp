// A TCP fault proxy for tests over real sockets (the PostgreSQL storage's
// tests, the exactly-once tests of the server).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace metrics::testing {

// A TCP proxy in front of a server (PostgreSQL, or the metrics server) that
// can lose an answer on the way back: swallow_replies() drops what the server sends from then on;
// cut() closes every connection and stops listening (connections are
// refused, as from a stopped server) until reopen(). One thread, poll().
class CutProxy {
 public:
  explicit CutProxy(int upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = listen_on(0);
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~CutProxy() {
    stop_ = true;
    thread_.join();
    close_all();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  CutProxy(const CutProxy&) = delete;
  CutProxy& operator=(const CutProxy&) = delete;

  [[nodiscard]] int port() const { return port_; }
  void swallow_replies() { swallow_ = true; }
  // Both return once the proxy thread has done it.
  void cut() { request(Command::cut); }
  void reopen() {
    swallow_ = false;
    request(Command::reopen);
  }

 private:
  enum class Command { none, cut, reopen };
  struct Pair {
    int client;
    int server;
  };

  static int listen_on(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void request(Command c) {
    {
      std::lock_guard lock(mu_);
      command_ = c;
    }
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mu_);
        if (command_ == Command::none) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    ADD_FAILURE() << "proxy did not carry out a command";
  }

  void close_all() {
    for (const auto& p : pairs_) {
      ::close(p.client);
      ::close(p.server);
    }
    pairs_.clear();
  }

  static bool forward(int from, int to, bool drop) {
    char buf[16384];
    const auto n = ::recv(from, buf, sizeof buf, 0);
    if (n <= 0) return false;
    if (drop) return true;
    for (ssize_t off = 0; off < n;) {
      const auto w = ::send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += w;
    }
    return true;
  }

  void loop() {
    while (!stop_) {
      {
        std::lock_guard lock(mu_);
        if (command_ == Command::cut) {
          close_all();
          if (listen_fd_ >= 0) ::close(listen_fd_);
          listen_fd_ = -1;
        } else if (command_ == Command::reopen && listen_fd_ < 0) {
          listen_fd_ = listen_on(port_);
        }
        command_ = Command::none;
      }
      std::vector<pollfd> fds;
      if (listen_fd_ >= 0) fds.push_back({listen_fd_, POLLIN, 0});
      for (const auto& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 5) <= 0) continue;
      std::size_t i = 0;
      if (listen_fd_ >= 0 && fds[i++].revents != 0) accept_one();
      std::vector<Pair> keep;
      for (std::size_t k = 0; k < pairs_.size(); ++k, i += 2) {
        const auto& p = pairs_[k];
        bool ok = true;
        if (i < fds.size() && fds[i].revents != 0) ok = forward(p.client, p.server, false);
        if (ok && i + 1 < fds.size() && fds[i + 1].revents != 0)
          ok = forward(p.server, p.client, swallow_);
        if (ok) {
          keep.push_back(p);
        } else {
          ::close(p.client);
          ::close(p.server);
        }
      }
      // Pairs accepted in this round are polled from the next one.
      keep.insert(keep.end(), pending_.begin(), pending_.end());
      pending_.clear();
      pairs_ = std::move(keep);
    }
  }

  void accept_one() {
    const int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) return;
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(client);
      ::close(server);
      return;
    }
    pending_.push_back({client, server});
  }

  int upstream_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> swallow_{false};
  std::mutex mu_;
  Command command_ = Command::none;
  std::vector<Pair> pairs_;
  std::vector<Pair> pending_;
  std::thread thread_;
};

}  // namespace metrics::testing
