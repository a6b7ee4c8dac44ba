#include "metrics/server/server.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "access_log.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/text.hpp"
#include "metrics/history/disk.hpp"
#include "metrics/remote/writer.hpp"
#include "metrics/server/telemetry.hpp"
#include "session.hpp"

namespace metrics::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

tcp::endpoint resolve_listen_address(const std::string& address) {
  auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return {tcp::v4(), static_cast<unsigned short>(std::stoul(port))};
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    throw core::Error("cannot resolve listen address " + address + ": " + ec.message());
  }
  // Like Go's net.Listen, prefer IPv4 for a name such as "localhost".
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) return r.endpoint();
  }
  return results.begin()->endpoint();
}

// The TLS context from the configured certificate chain and key (the flags
// or the web config's tls_server_config), or nothing when the server speaks
// plain HTTP. Reads the files each time: a reload picks up a renewed
// certificate at the same paths.
std::shared_ptr<asio::ssl::context> make_tls_context(const ServerConfig& config,
                                                     const WebConfig* web) {
  std::string cert = config.tls_cert;
  std::string key = config.tls_key;
  bool tls13_only = false;
  if (web != nullptr && !web->tls.empty()) {
    if (!cert.empty()) {
      throw core::Error("TLS is set twice: by --tls-cert/--tls-key and by tls_server_config in " +
                        config.web_config + "; keep one");
    }
    cert = web->tls.cert_file;
    key = web->tls.key_file;
    tls13_only = web->tls.min_version == "TLS13";
  }
  if (cert.empty()) return nullptr;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use |
                   (tls13_only ? asio::ssl::context::no_tlsv1_2 : 0));
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) throw core::Error("TLS certificate " + cert + ": " + ec.message());
  // OpenSSL refuses a key that is not the certificate's ("key values
  // mismatch"), which would otherwise fail every handshake.
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) throw core::Error("TLS key " + key + ": " + ec.message());
  return ctx;
}

// The web auth of --web-config/--web-tokens (null without either); throws
// WebConfigError naming the file.
std::shared_ptr<WebAuth> make_auth(const ServerConfig& config) {
  if (config.web_config.empty() && config.web_tokens.empty()) return nullptr;
  auto web = load_web_config(config.web_config, config.web_tokens);
  for (const auto& key : web.not_applied)
    spdlog::warn("web config: {} is accepted but not applied by this server", key);
  spdlog::info("web config {}: {} user(s), {} token(s){}", web.source, web.users.size(),
               web.tokens.size(),
               web.requires_auth() ? "; reads need credentials" : "; reads stay open");
  return std::make_shared<WebAuth>(std::move(web));
}

std::shared_ptr<history::HistoryStore> make_history(const ServerConfig& cfg,
                                                    std::shared_ptr<core::Clock> clock) {
  history::HistoryOptions o;
  o.retention = cfg.retention;
  o.max_bytes = cfg.history_max_bytes;
  o.clock = std::move(clock);
  o.maintenance_interval = std::chrono::seconds{10};
  o.log = [](std::string_view line) { spdlog::info("{}", line); };
  o.track_closed = !cfg.history_dir.empty();
  return std::make_shared<history::HistoryStore>(std::move(o));
}

// The history dir's lines: the load summary and removals at info, bad files
// and failed flushes at warn.
void dir_log(std::string_view line) {
  if (line.starts_with("history: loaded ") || line.starts_with("history: removed ")) {
    spdlog::info("{}", line);
  } else {
    spdlog::warn("{}", line);
  }
}

// Locks the history dir (throws history::HistoryDirLocked naming the
// holder's pid); null for memory only.
std::unique_ptr<history::HistoryDir> open_history_dir(
    const ServerConfig& cfg, std::shared_ptr<core::Clock> clock,
    std::function<std::optional<history::SeriesRef>(const history::SeriesIdentity&,
                                                    history::SeriesRef)>
        map_ref) {
  if (cfg.history_dir.empty() || !cfg.history) return nullptr;
  return std::make_unique<history::HistoryDir>(
      history::HistoryDirOptions{.dir = cfg.history_dir,
                                 .log = dir_log,
                                 .clock = std::move(clock),
                                 .map_ref = std::move(map_ref)});
}

// Remote write out: hands each batch to a RemoteWriter, whose own bounded
// queue takes it or drops it (never blocks).
class RemoteWriteSink final : public IngestSink {
 public:
  explicit RemoteWriteSink(std::shared_ptr<remote::RemoteWriter> writer)
      : writer_(std::move(writer)) {}
  void accept(const IngestBatch& batch) noexcept override {
    writer_->accept(batch.received_ms, batch.points, batch.refs, batch.times);
  }

 private:
  std::shared_ptr<remote::RemoteWriter> writer_;
};

}  // namespace

struct Server::Impl {
  struct Worker {
    struct Connection {
      beast::tcp_stream* stream = nullptr;
      bool idle = true;
    };
    // Connections of this worker; touched only on its thread. Declared
    // before the io_context so that coroutine frames destroyed with it can
    // still unregister themselves.
    std::list<Connection> connections;
    asio::io_context ioc{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{
        ioc.get_executor()};
    // Access-log lines of this thread's requests, handed over in chunks.
    std::optional<detail::AccessLogBuffer> log;
    asio::steady_timer log_timer{ioc};
  };

  Impl(const ServerConfig& cfg, storage::Repository& repo, ServerHooks test_hooks)
      : config(cfg),
        hooks(std::move(test_hooks)),
        auth(make_auth(cfg)),
        clock_ptr(hooks.clock ? hooks.clock : core::real_clock()),
        // The history's threads (maintenance, flush) wait on the real clock:
        // a test's ManualClock counts its waiters, which are the series
        // sweep's alone.
        history(make_history(cfg, core::real_clock())),
        history_dir(open_history_dir(
            cfg, core::real_clock(),
            [this](const history::SeriesIdentity& id, history::SeriesRef) { return map_ref(id); })),
        history_sink(make_history_sink(*history)),
        fanout(std::make_shared<IngestFanout>()),
        service(repo,
                ServiceOptions{.key = cfg.key,
                               .max_body_bytes = cfg.max_body_bytes,
                               .max_batch_items = cfg.max_batch_items,
                               .gzip_level = 1,
                               .allow_unsigned = cfg.allow_unsigned,
                               .clock = clock_ptr,
                               .limits = {.max_series = cfg.max_series,
                                          .max_series_per_instance = cfg.max_series_per_instance},
                               .stale_after = cfg.stale_after,
                               .series_ttl = cfg.series_ttl,
                               .fanout = fanout,
                               .history = history,
                               .query = std::make_shared<QueryApi>(
                                   QueryApiOptions{.timeout = cfg.query_timeout,
                                                   .lookback_delta = cfg.query_lookback_delta,
                                                   .max_samples = cfg.query_max_samples,
                                                   .max_concurrency = cfg.query_max_concurrency}),
                               .auth = auth,
                               .finish_hook = hooks.finish}),
        limits{.max_header_bytes = cfg.max_header_bytes,
               .max_body_bytes = cfg.max_body_bytes,
               .read_timeout = cfg.read_timeout},
        tls(make_tls_context(cfg, auth ? auth->config().get() : nullptr)) {
    unsigned n = config.threads != 0 ? config.threads : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    if (config.access_log && spdlog::should_log(spdlog::level::info)) {
      access_log = std::make_unique<detail::AccessLog>(detail::stderr_log_writer());
    }
    for (unsigned i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<Worker>());
      if (access_log) workers.back()->log.emplace(access_log.get());
    }
    acceptor.emplace(workers[0]->ioc);
    auto endpoint = resolve_listen_address(config.address);
    boost::system::error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw core::Error("cannot listen on " + config.address + ": " + ec.message());
    port = acceptor->local_endpoint().port();
    index_loaded = service.load_index();
    if (auth) {
      auth_metrics = service.telemetry().add_collector([a = auth](telemetry::Writer& w) {
        using telemetry::Type;
        w.family("metrics_server_auth_failures_total", Type::counter,
                 "Attempts with wrong credentials, and throttled ones (--web-config, "
                 "--web-tokens); requests without credentials are not counted.");
        w.sample_integer({}, a->failures_total());
        w.family("metrics_server_auth_tracked_addresses", Type::gauge,
                 "Client addresses with recent authentication failures (a fixed-size table).");
        w.sample({}, static_cast<double>(a->tracked_addresses()));
      });
    }
    load_history();
    start_remote_write();
  }

  ~Impl() {
    stop_queries();
    stop_history();
    stop_remote_write();
  }

  // One RemoteWriter per --remote-write-url, after the history sink in the
  // fan-out (so that what it drops is in the history to catch up from).
  void start_remote_write() {
    for (const auto& url : config.remote_write_urls) {
      remote::RemoteWriteOptions o;
      o.url = url;
      o.headers = config.remote_write_headers;
      for (const auto& l : config.remote_write_labels) {
        const auto eq = l.find('=');
        o.external_labels.emplace_back(l.substr(0, eq), l.substr(eq + 1));
      }
      o.max_queue_samples = config.remote_write_queue;
      if (config.history) {
        // Before reading, the history sink appends what it took so far (a
        // bounded wait), so a catch-up never looks before the history has
        // the samples the queue dropped.
        o.history = [store = history, sink = history_sink](std::int64_t from, std::int64_t to) {
          const auto taken = sink->stats().accepted_batches;
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
          while (sink->stats().drained_batches < taken &&
                 std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds{1});
          }
          return store->read_range(
              [](history::SeriesRef, const history::SeriesIdentity&) { return true; }, from, to);
        };
        if (history_dir) o.state_path = remote::state_file(config.history_dir, url);
      }
      const bool state = !o.state_path.empty();
      auto writer = std::make_shared<remote::RemoteWriter>(std::move(o));
      remote_writers.push_back(writer);
      fanout->add(std::make_shared<RemoteWriteSink>(std::move(writer)));
      spdlog::info("remote write: every sample goes to {}{}", remote::redact_url(url),
                   !config.history ? " (no history: what the queue drops is lost)"
                   : state         ? ""
                                   : " (no history dir: no catch-up across restarts)");
    }
    if (!remote_writers.empty()) {
      remote_write_metrics = service.telemetry().add_collector(
          [writers = remote_writers](telemetry::Writer& w) { write_remote_metrics(w, writers); });
    }
  }

  // metrics_server_remote_write_…{url}: one label value per destination
  // (its URL without user:password).
  static void write_remote_metrics(
      telemetry::Writer& w, const std::vector<std::shared_ptr<remote::RemoteWriter>>& writers) {
    using telemetry::Type;
    std::vector<remote::RemoteWriteStats> stats;
    stats.reserve(writers.size());
    for (const auto& writer : writers)
      stats.push_back(writer->stats());
    const auto family = [&](std::string_view name, Type type, std::string_view help, auto&& value) {
      w.family(name, type, help);
      for (const auto& s : stats) {
        const std::array<telemetry::Label, 1> labels{{{"url", s.url}}};
        w.sample(labels, static_cast<double>(value(s)));
      }
    };
    using S = remote::RemoteWriteStats;
    family("metrics_server_remote_write_sent_samples_total", Type::counter,
           "Samples a remote-write destination took (2xx), catch-up included.",
           [](const S& s) { return s.sent_samples; });
    family("metrics_server_remote_write_catchup_samples_total", Type::counter,
           "Of the sent samples, those read back from the history after an outage.",
           [](const S& s) { return s.catchup_samples; });
    family("metrics_server_remote_write_failed_samples_total", Type::counter,
           "Samples a destination refused for good (a 4xx other than 429).",
           [](const S& s) { return s.failed_samples; });
    family("metrics_server_remote_write_retried_requests_total", Type::counter,
           "Remote-write requests retried (5xx, 429, transport failures).",
           [](const S& s) { return s.retried_requests; });
    family("metrics_server_remote_write_dropped_samples_total", Type::counter,
           "Samples the queue dropped when full (sent later from the history when there is one).",
           [](const S& s) { return s.dropped_samples; });
    family("metrics_server_remote_write_queue_samples", Type::gauge,
           "Samples waiting in a destination's queue.",
           [](const S& s) { return s.queued_samples; });
    family("metrics_server_remote_write_watermark_seconds", Type::gauge,
           "Every sample at or before this time was delivered or refused (unix seconds).",
           [](const S& s) { return static_cast<double>(s.watermark_ms) / 1000.0; });
  }

  // Flushes every destination at once (each within its short bound).
  void stop_remote_write() noexcept {
    try {
      std::vector<std::thread> stoppers;
      for (const auto& w : remote_writers)
        stoppers.emplace_back([w] { w->stop(); });
      for (auto& t : stoppers)
        t.join();
    } catch (...) {
      for (const auto& w : remote_writers)
        w->stop();
    }
  }

  // Cancels the queries in flight and joins their pool, while the workers'
  // io_contexts (which their answers are posted to) still exist.
  void stop_queries() noexcept {
    if (const auto& api = service.options().query) api->shutdown();
    if (auth) auth->shutdown();
  }

  // Reads the history dir into the store (bad files are reported by name
  // and skipped; nothing here stops the server) and starts its background
  // flush. A stored series gets its id in the index; one the index does not
  // know (the storage lost it) is made live again.
  void load_history() {
    if (!config.history) {
      spdlog::info("history: off (--no-history): current values only");
      return;
    }
    fanout->add(history_sink);
    sink_metrics = add_sink_collector(service.telemetry(), "history", history_sink);
    if (!history_dir) {
      spdlog::info("history: in memory only (no --history-dir)");
      return;
    }
    // load() logs each bad file by name and a summary (dir_log).
    (void)history_dir->load(*history);
    history_dir->start(*history);
  }

  // The id in this run of a series read back from the history dir (only
  // called from load(), after the service exists): the index's, and a
  // series the index does not know (the storage lost it) is live again.
  std::optional<history::SeriesRef> map_ref(const history::SeriesIdentity& id) {
    series::SeriesIndex& index = service.index();
    if (auto found = index.find(id)) return found->id;
    index.load(id, std::chrono::duration_cast<std::chrono::milliseconds>(
                       clock_ptr->system_now().time_since_epoch())
                       .count());
    if (auto found = index.find(id)) return found->id;
    return std::nullopt;
  }

  // Drains the sink, then flushes the history dir a last time. Idempotent.
  void stop_history() noexcept {
    history_sink->stop();
    try {
      if (history_dir) history_dir->stop();
    } catch (...) {
      try {
        spdlog::error("history: the last flush failed: {}", describe(std::current_exception()));
      } catch (...) {  // NOLINT(bugprone-empty-catch): shutting down
      }
    }
  }

  // Loads the index until it is loaded, then sweeps expired series, on the
  // service's clock; until stop().
  void maintenance() {
    core::Clock& clock = *service.options().clock;
    std::unique_lock lock(maintenance_mu);
    for (;;) {
      const auto interval =
          index_loaded ? service.expiry_interval() : std::chrono::milliseconds{1000};
      const auto stop = [this] { return maintenance_stop; };
      if (interval.count() == 0) {
        maintenance_cv.wait(lock, stop);
      } else {
        clock.wait_for(maintenance_cv, lock, interval, stop);
      }
      if (maintenance_stop) return;
      lock.unlock();
      if (!index_loaded) index_loaded = service.load_index();
      try {
        service.expire_once();
      } catch (...) {
        try {
          spdlog::warn("series expiry failed: {}; retrying at the next sweep",
                       describe(std::current_exception()));
        } catch (...) {  // NOLINT(bugprone-empty-catch): logging must not end the thread
        }
      }
      lock.lock();
    }
  }

  asio::awaitable<void> accept_loop(bool restarted) {
    if (restarted) {
      // Whatever broke the loop may break it again at once: do not spin.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds{100});
      co_await pause.async_wait(use_tuple);
    }
    std::size_t next = 0;
    while (!stopping.load()) {
      Worker& worker = *workers[next++ % workers.size()];
      tcp::endpoint peer;
      auto [ec, socket] = co_await acceptor->async_accept(worker.ioc, peer, use_tuple);
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) co_return;
        // Out of file descriptors and the like: back off instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds{50});
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (open_connections.load() >= config.max_connections) {
        spdlog::warn("connection limit {} reached; refusing a connection", config.max_connections);
        continue;  // the socket closes as it goes out of scope
      }
      open_connections.fetch_add(1);
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (auto ctx = current_tls()) {
        asio::co_spawn(worker.ioc, tls_session(worker, std::move(socket), std::move(ctx)),
                       SessionDone{peer});
      } else {
        asio::co_spawn(worker.ioc, session(worker, beast::tcp_stream(std::move(socket))),
                       SessionDone{peer});
      }
      if (hooks.accepted) hooks.accepted();
    }
  }

  // The completion of a connection's coroutine: an exception that escaped
  // it (the Service answers every failure, so this is a bug or memory
  // exhaustion) ends that connection only, and is logged once.
  struct SessionDone {
    tcp::endpoint peer;
    void operator()(const std::exception_ptr& err) const {
      if (!err) return;
      try {
        spdlog::error("connection from {}: closed by an unexpected failure: {}", to_text(peer),
                      describe(err));
      } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to tell
      }
    }
  };

  static std::string to_text(const tcp::endpoint& peer) {
    const auto address = peer.address();
    return address.is_v6() ? "[" + address.to_string() + "]:" + std::to_string(peer.port())
                           : address.to_string() + ":" + std::to_string(peer.port());
  }

  static std::string describe(const std::exception_ptr& err) {
    try {
      std::rethrow_exception(err);
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
      return "an exception not derived from std::exception";
    }
  }

  // Runs the accept loop; when an exception escapes it, logs it and starts
  // the loop again (never a listener that no longer accepts).
  void spawn_accept_loop(bool restarted) {
    asio::co_spawn(workers[0]->ioc, accept_loop(restarted), [this](std::exception_ptr err) {
      if (!err) return;
      spdlog::error("accept loop failed: {}; restarting it", describe(err));
      if (!stopping.load()) spawn_accept_loop(true);
    });
  }

  void spawn_log_flusher(Worker& worker) {
    asio::co_spawn(worker.ioc, log_flusher(worker), [this, &worker](std::exception_ptr err) {
      if (!err) return;
      spdlog::error("access log flusher failed: {}; restarting it", describe(err));
      if (!stopping.load()) spawn_log_flusher(worker);
    });
  }

  // The context in use for new connections (null: plain HTTP). A reload
  // swaps it; a connection keeps the one it was accepted with.
  [[nodiscard]] std::shared_ptr<asio::ssl::context> current_tls() const {
    const std::lock_guard lock(tls_mutex);
    return tls;
  }

  // ctx outlives the stream that refers to it.
  asio::awaitable<void> tls_session(Worker& worker, tcp::socket socket,
                                    std::shared_ptr<asio::ssl::context> ctx) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *ctx);
    beast::get_lowest_layer(stream).expires_after(config.read_timeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
      spdlog::debug("TLS handshake failed: {}", ec.message());
      open_connections.fetch_sub(1);
      co_return;
    }
    co_await session(worker, std::move(stream));
  }

  // What the session loop knows of its connection in the server.
  struct Observer {
    Impl& impl;
    Worker& worker;
    Worker::Connection& self;
    beast::tcp_stream& lowest;

    [[nodiscard]] bool stopping() const noexcept { return impl.stopping.load(); }
    void idle(bool value) noexcept { self.idle = value; }
    void expires_after(std::chrono::milliseconds d) { lowest.expires_after(d); }
    [[nodiscard]] bool logging() const noexcept { return worker.log.has_value(); }
    // The failure throttle's key.
    [[nodiscard]] std::string peer() const {
      boost::system::error_code ec;
      const auto endpoint = lowest.socket().remote_endpoint(ec);
      return ec ? std::string() : endpoint.address().to_string();
    }
    void log(std::string_view method, std::string_view target, unsigned status, std::size_t bytes,
             std::chrono::microseconds took) {
      worker.log->line(method, target, status, bytes, took);
    }
  };

  // Serves one connection, plain or TLS, until it closes, fails, times out
  // or the server stops.
  template <class Stream>
  asio::awaitable<void> session(Worker& worker, Stream stream) {
    auto& lowest = beast::get_lowest_layer(stream);
    worker.connections.push_back({&lowest, true});
    auto self = std::prev(worker.connections.end());
    struct Cleanup {
      Impl* impl;
      Worker* w;
      std::list<Worker::Connection>::iterator it;
      ~Cleanup() {
        w->connections.erase(it);
        impl->open_connections.fetch_sub(1);
      }
    } cleanup{this, &worker, self};

    Observer observer{*this, worker, *self, lowest};
    co_await detail::serve_connection(stream, service, limits, observer);
    co_await close_stream(stream);
  }

  static asio::awaitable<void> close_stream(beast::tcp_stream& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
    co_return;
  }

  static asio::awaitable<void> close_stream(beast::ssl_stream<beast::tcp_stream>& stream) {
    // A TLS close_notify, bounded in time: the peer may be gone already.
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{2});
    co_await stream.async_shutdown(use_tuple);
    beast::get_lowest_layer(stream).close();
  }

  void stop() {
    if (stopping.exchange(true)) return;
    asio::post(workers[0]->ioc, [this] {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    });
    for (auto& w : workers) {
      asio::post(w->ioc, [worker = w.get()] {
        for (auto& c : worker->connections) {
          if (c.idle) c.stream->cancel();
        }
        worker->log_timer.cancel();
        worker->guard.reset();
      });
    }
    {
      std::lock_guard lock(mutex);
      stop_requested = true;
    }
    cv.notify_all();
    {
      std::lock_guard lock(maintenance_mu);
      maintenance_stop = true;
    }
    maintenance_cv.notify_all();
  }

  // Hands each thread's access-log lines over at least once a second.
  asio::awaitable<void> log_flusher(Worker& worker) {
    while (!stopping.load()) {
      worker.log_timer.expires_after(std::chrono::seconds{1});
      co_await worker.log_timer.async_wait(use_tuple);
      worker.log->flush();
    }
  }

  void run() {
    std::thread maintainer([this] { maintenance(); });
    spawn_accept_loop(false);
    for (auto& w : workers) {
      if (w->log) spawn_log_flusher(*w);
    }
    std::size_t finished = 0;
    std::vector<std::thread> threads;
    for (auto& w : workers) {
      threads.emplace_back([this, worker = w.get(), &finished] {
        worker->ioc.run();
        std::lock_guard lock(mutex);
        ++finished;
        cv.notify_all();
      });
    }
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return stop_requested; });
      if (!cv.wait_for(lock, config.shutdown_timeout, [&] { return finished == workers.size(); })) {
        spdlog::warn("shutdown timeout: abandoning {} connection(s)", open_connections.load());
        for (auto& w : workers)
          w->ioc.stop();
      }
    }
    for (auto& t : threads)
      t.join();
    stop_queries();
    maintainer.join();
    for (auto& w : workers) {
      if (w->log) w->log->flush();
    }
    stop_history();
    stop_remote_write();
  }

  ServerConfig config;
  ServerHooks hooks;
  // Before the service, which checks reads with it.
  std::shared_ptr<WebAuth> auth;
  std::shared_ptr<core::Clock> clock_ptr;
  // Declared before the service (which holds them) and destroyed after it;
  // the store outlives the dir and the sink that write it.
  std::shared_ptr<history::HistoryStore> history;
  std::unique_ptr<history::HistoryDir> history_dir;
  std::shared_ptr<QueuedSink> history_sink;
  std::shared_ptr<IngestFanout> fanout;
  std::vector<std::shared_ptr<remote::RemoteWriter>> remote_writers;
  Service service;
  // Destroyed before the service's registry and the sink it reads.
  telemetry::Registration sink_metrics;
  telemetry::Registration auth_metrics;
  telemetry::Registration remote_write_metrics;
  detail::SessionLimits limits;
  mutable std::mutex tls_mutex;
  std::shared_ptr<asio::ssl::context> tls;  // guarded by tls_mutex; never null once set
  // Outlives the workers, whose buffers hand lines to it.
  std::unique_ptr<detail::AccessLog> access_log;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open_connections{0};
  std::mutex mutex;
  std::condition_variable cv;
  bool stop_requested = false;
  // The maintenance thread's; index_loaded is its own once run() started.
  bool index_loaded = false;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool maintenance_stop = false;
};

Server::Server(const ServerConfig& config, storage::Repository& repo, ServerHooks hooks)
    : impl_(std::make_unique<Impl>(config, repo, std::move(hooks))) {}

Server::~Server() = default;

std::uint16_t Server::port() const noexcept {
  return impl_->port;
}

void Server::run() {
  impl_->run();
}

void Server::stop() noexcept {
  impl_->stop();
}

std::optional<std::string> Server::reload_web_config() {
  const auto& cfg = impl_->config;
  const bool tls_on = impl_->current_tls() != nullptr;
  if (!impl_->auth && !tls_on) {
    return std::nullopt;  // neither file configured and no certificate: nothing to reload
  }
  std::optional<WebConfig> next;
  if (impl_->auth) {
    try {
      next = load_web_config(cfg.web_config, cfg.web_tokens);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  }
  // The listener's protocol is fixed at the start: TLS can be renewed, not
  // turned on or off.
  std::shared_ptr<asio::ssl::context> ctx;
  if (tls_on) {
    const bool from_file = next && !next->tls.empty();
    if (cfg.tls_cert.empty() && !from_file) {
      spdlog::warn(
          "web config {}: tls_server_config was removed; the server keeps TLS with the "
          "certificate it has until the next start",
          next->source);
    } else {
      try {
        ctx = make_tls_context(cfg, next ? &*next : nullptr);
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    }
  } else if (next && !next->tls.empty()) {
    spdlog::warn(
        "web config {}: tls_server_config was added; the server speaks plain HTTP "
        "until the next start",
        next->source);
  }
  if (next) {
    for (const auto& key : next->not_applied)
      spdlog::warn("web config: {} is accepted but not applied by this server", key);
    spdlog::info("web config {} reloaded: {} user(s), {} token(s)", next->source,
                 next->users.size(), next->tokens.size());
    impl_->auth->replace(std::move(*next));
  }
  if (ctx) {
    {
      const std::lock_guard lock(impl_->tls_mutex);
      impl_->tls = std::move(ctx);
    }
    spdlog::info("TLS certificate reloaded: new connections use it, open ones keep theirs");
  }
  return std::nullopt;
}

std::size_t Server::connections() const noexcept {
  return impl_->open_connections.load();
}

series::SeriesIndex& Server::index() noexcept {
  return impl_->service.index();
}

Service& Server::service() noexcept {
  return impl_->service;
}

std::vector<remote::RemoteWriteStats> Server::remote_write_stats() const {
  std::vector<remote::RemoteWriteStats> out;
  out.reserve(impl_->remote_writers.size());
  for (const auto& w : impl_->remote_writers)
    out.push_back(w->stats());
  return out;
}

}  // namespace metrics::server
