// metrics-server: wires configuration, storage and the HTTP server together.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "metrics/server/config.hpp"
#include "metrics/server/logging.hpp"
#include "metrics/server/server.hpp"
#include "metrics/storage/factory.hpp"

int main(int argc, char** argv) {
  using namespace metrics;
  server::ServerConfig config;
  std::vector<std::string> origins;
  try {
    auto loaded = server::load_server_config({argv + 1, argv + argc}, server::process_env());
    if (loaded.help_requested) {
      std::fputs(loaded.help.c_str(), stdout);
      return 0;
    }
    config = std::move(loaded.config);
    origins = std::move(loaded.origins);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics-server: %s\n", e.what());
    return 2;
  }

  server::init_logging(config.log_level);
  for (const auto& line : origins) {
    spdlog::info("config: {}", line);
  }
  if (auto warning = server::restore_warning(config)) spdlog::warn("{}", *warning);
  int status = 0;
  try {
    auto repo = storage::make_repository(config.storage);
    {
      server::Server srv(config, *repo);
      boost::asio::io_context signals_ioc;
      boost::asio::signal_set signals(signals_ioc, SIGINT, SIGTERM);
      signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (!ec) spdlog::info("signal {}: shutting down", signo);
        srv.stop();
      });
      std::thread signal_thread([&] { signals_ioc.run(); });
      spdlog::info("listening on {} (port {}), storage: {}", config.address, srv.port(),
                   storage::describe(config.storage));
      srv.run();
      boost::asio::post(signals_ioc, [&] { signals.cancel(); });
      signal_thread.join();
    }
    repo->close();
    spdlog::info("stopped");
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    status = 1;
  }
  server::shutdown_logging();
  return status;
}
