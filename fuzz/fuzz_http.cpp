// Fuzzes a connection's bytes end to end without sockets: a Beast request
// parser with the server's limits, then Service::handle (or Service::reject
// for a request that cannot be read, as the session does) against a memory
// repository, for every pipelined request in the input.
// Properties: nothing crashes or throws; every answer has a status of the
// contract and a consistent body (gzip inflates, signatures match); a 4xx
// answer leaves the repository exactly as it was.
//
// Input: byte 0 holds options (bit 0: a signing key is configured), the rest
// is what the client sent.
#include <spdlog/spdlog.h>

#include <bit>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace core = metrics::core;
namespace server = metrics::server;
namespace storage = metrics::storage;

constexpr std::size_t kMaxBody = 65536;
constexpr std::size_t kMaxHeader = 8192;
constexpr std::string_view kKey = "fuzz-key";

bool same(const std::vector<core::Metric>& a, const std::vector<core::Metric>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].delta != b[i].delta ||
        std::bit_cast<std::uint64_t>(a[i].value) != std::bit_cast<std::uint64_t>(b[i].value)) {
      return false;
    }
  }
  return true;
}

void check_answer(const server::Response& res, bool signed_answers, std::size_t inflate_limit) {
  const unsigned status = res.result_int();
  FUZZ_CHECK(status == 200 || status == 400 || status == 401 || status == 404 || status == 405 ||
             status == 413 || status == 415 || status == 431);
  if (status == 405) FUZZ_CHECK(!res[http::field::allow].empty());
  if (status >= 400) FUZZ_CHECK(!res.body().empty());
  FUZZ_CHECK(res[http::field::content_length] == std::to_string(res.body().size()));
  if (signed_answers) {
    FUZZ_CHECK(core::verify_signature(kKey, res.body(), res[core::kSignatureHeader]));
  }
  if (res[http::field::content_encoding] == "gzip") {
    (void)core::gzip_decompress(res.body(), inflate_limit);  // throws on a broken answer
  }
}

server::Response run(asio::io_context& ioc, server::Service& service, server::Request req) {
  server::Response res;
  bool done = false;
  asio::co_spawn(ioc, service.handle(std::move(req)),
                 [&](std::exception_ptr err, server::Response r) {
                   FUZZ_CHECK(!err);
                   res = std::move(r);
                   done = true;
                 });
  ioc.restart();
  ioc.run();
  FUZZ_CHECK(done);
  return res;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const bool with_key = (data[0] & 1) != 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  storage::MemoryRepository repo(4);
  (void)storage::apply_sync(
      repo, {core::Metric::gauge("g", 1.5),
             core::Metric::counter("c", std::numeric_limits<std::int64_t>::max() - 5),
             core::Metric::counter("n", std::numeric_limits<std::int64_t>::min() + 5)});
  server::Service service(repo, {.key = with_key ? std::string(kKey) : std::string(),
                                 .max_body_bytes = kMaxBody,
                                 .max_batch_items = 1000,
                                 .gzip_level = 1});
  asio::io_context ioc;

  // At most a few pipelined requests per input, as a session would answer them.
  for (int n = 0; n < 8 && !rest.empty(); ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(kMaxHeader));
    parser.body_limit(kMaxBody);
    boost::system::error_code ec;
    while (!rest.empty()) {
      const auto used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec == http::error::need_more) {
        ec = {};
        if (used == 0) break;
        continue;
      }
      if (ec || parser.is_done()) break;
    }
    if (!ec && !parser.is_done()) {
      if (!parser.got_some()) break;
      parser.put_eof(ec);
      if (!ec) ec = http::error::partial_message;
    }
    const auto before = storage::list_sync(repo);
    if (ec) {
      // What the session answers before it closes the connection.
      server::Request partial;
      if (parser.is_header_done()) partial.base() = parser.get().base();
      http::status status = http::status::bad_request;
      if (ec == http::error::body_limit) status = http::status::payload_too_large;
      if (ec == http::error::header_limit) status = http::status::request_header_fields_too_large;
      const auto res = service.reject(status, "rejected", partial);
      check_answer(res, with_key, kMaxBody);
      FUZZ_CHECK(same(storage::list_sync(repo), before));
      break;
    }
    server::Request req = parser.release();
    const bool keep_alive = req.keep_alive();
    const auto res = run(ioc, service, std::move(req));
    check_answer(res, with_key, 64u << 20);
    if (res.result_int() >= 400 && res.result_int() < 500) {
      FUZZ_CHECK(same(storage::list_sync(repo), before));
    }
    if (!keep_alive) break;
  }
  return 0;
}
