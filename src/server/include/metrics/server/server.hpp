// The HTTP/1.1 listener: accepts connections, reads requests with limits and
// deadlines, hands them to the Service, writes answers (keep-alive and
// pipelining), logs each request, and shuts down gracefully.
//
//   server::Server srv(config, repo);   // binds now; throws on a bad address
//   std::jthread t([&] { srv.run(); });
//   srv.stop();                          // from any thread, or a signal handler's io
//
// Threading: `threads` I/O threads, each with its own io_context; a
// connection lives on one of them for its whole life, so no strand is needed.
// One more thread, on the clock of ServerHooks, loads the series index if
// the storage did not answer at start (every second until it does) and runs
// the series expiry sweep (every min(--series-ttl / 10, 1 min)).
// History: the written series points go through the ingest fan-out
// (ingest.hpp) to the history store; with --history-dir the dir is locked
// at construction (a second server on it throws history::HistoryDirLocked
// naming the holder's pid), loaded, flushed in the background and once more
// when run() returns.
// stop() and port() are thread-safe; run() is called once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/core/clock.hpp"
#include "metrics/remote/writer.hpp"
#include "metrics/series/index.hpp"
#include "metrics/server/config.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::server {

// Test seams: failures injected where production code has none to offer.
// Empty in production.
struct ServerHooks {
  // See ServiceOptions::finish_hook.
  std::function<void(const Response&)> finish{};
  // Called in the accept loop after each accepted connection; may throw.
  std::function<void()> accepted{};
  // The clock of receive times, liveness and the expiry sweep (null: the
  // real clock); a core::ManualClock lets a test move time.
  std::shared_ptr<core::Clock> clock{};
};

// An exception that escapes a connection's coroutine is logged once with the
// peer's address and ends only that connection; one that escapes the accept
// loop or a log flusher is logged and the loop restarted.
class Server {
 public:
  Server(const ServerConfig& config, storage::Repository& repo, ServerHooks hooks = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const noexcept;

  // Serves until stop(); returns after in-flight requests finished (or the
  // shutdown timeout passed). Installs no signal handlers.
  void run();

  // Stops accepting, lets requests in flight finish, closes idle connections.
  void stop() noexcept;

  // Reads --web-config and --web-tokens again and swaps the users and
  // tokens, and with TLS on reads the certificate and key again (the flags'
  // files or tls_server_config's, renewed in place or moved); connections
  // stay open with what they were accepted with, new ones get the new
  // certificate. On a bad file or certificate nothing changes and the reason
  // (naming the file) is returned. TLS cannot be turned on or off without a
  // restart (such a change is logged).
  [[nodiscard]] std::optional<std::string> reload_web_config();

  // Connections open right now.
  [[nodiscard]] std::size_t connections() const noexcept;

  // The live series index (liveness for /metrics and /api/v1/series).
  [[nodiscard]] series::SeriesIndex& index() noexcept;
  // The service (its history() and read_history() are the range-read seam).
  [[nodiscard]] Service& service() noexcept;
  // Remote write out, one entry per --remote-write-url (for /metrics):
  // samples sent, failed, retried, dropped and the queue's length.
  [[nodiscard]] std::vector<remote::RemoteWriteStats> remote_write_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace metrics::server
