// Fuzzes a connection's bytes end to end without sockets: the server's own
// session loop (src/server/src/session.hpp: read loop, limits,
// 100-continue, pipelining, rejections) over boost::beast::test::stream,
// with Service::handle against a memory repository.
// Properties: nothing crashes or throws; the bytes written back are a
// sequence of well-formed answers, one per request served; every answer has
// a status of the contract and a consistent body (gzip inflates, signatures
// match); a 4xx answer (429 for a series limit included) leaves both tables
// of the repository exactly as they were.
//
// Input: byte 0 holds options (bit 0: a signing key is configured; bits 1-2:
// how many bytes one read returns: all, 1, 7 or 300), the rest is what the
// client sent.
#include <spdlog/spdlog.h>

#include <bit>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
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
#include "session.hpp"

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace core = metrics::core;
namespace server = metrics::server;
namespace storage = metrics::storage;

constexpr std::size_t kMaxBody = 65536;
constexpr std::size_t kMaxHeader = 8192;
constexpr std::string_view kKey = "fuzz-key";

bool same(const std::vector<core::Point>& a, const std::vector<core::Point>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].labels != b[i].labels ||
        a[i].total != b[i].total || a[i].timestamp_ms != b[i].timestamp_ms ||
        std::bit_cast<std::uint64_t>(a[i].value) != std::bit_cast<std::uint64_t>(b[i].value)) {
      return false;
    }
  }
  return true;
}

// Both tables: the classic values and the series.
std::vector<core::Point> everything(storage::Repository& repo) {
  auto all = storage::list_sync(repo);
  auto series = storage::list_series_sync(repo);
  all.insert(all.end(), series.begin(), series.end());
  return all;
}

void check_answer(const server::Response& res, bool signed_answers, std::size_t inflate_limit) {
  const unsigned status = res.result_int();
  FUZZ_CHECK(status == 200 || status == 400 || status == 401 || status == 404 || status == 405 ||
             status == 413 || status == 415 || status == 429 || status == 431);
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

// The session's view of the server: checks the repository after every
// answer, and stops the connection after a few requests.
struct Observer {
  storage::MemoryRepository& repo;
  std::vector<core::Point> before;
  int answered = 0;

  [[nodiscard]] bool stopping() const { return answered >= 8; }
  void idle(bool) {}
  void expires_after(std::chrono::milliseconds) {}
  [[nodiscard]] bool logging() const { return true; }
  void log(std::string_view method, std::string_view target, unsigned status, std::size_t,
           std::chrono::microseconds) {
    FUZZ_CHECK(!method.empty() && !target.empty());
    auto now = everything(repo);
    if (status >= 400 && status < 500) FUZZ_CHECK(same(now, before));
    before = std::move(now);
    ++answered;
  }
};

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
      repo,
      {core::Update::gauge("g", 1.5),
       core::Update::counter("c", std::numeric_limits<std::int64_t>::max() - 5),
       core::Update::counter("n", std::numeric_limits<std::int64_t>::min() + 5),
       core::Update::gauge("g", 2.5, core::Labels::make({{"instance", "h:1"}, {"job", "a"}}))});
  server::Service service(repo, {.key = with_key ? std::string(kKey) : std::string(),
                                 .max_body_bytes = kMaxBody,
                                 .max_batch_items = 1000,
                                 .gzip_level = 1,
                                 // Small limits, so that 429 is reachable.
                                 .limits = {.max_series = 12, .max_series_per_instance = 4}});
  (void)service.load_index();
  const server::detail::SessionLimits limits{
      .max_header_bytes = kMaxHeader, .max_body_bytes = kMaxBody, .read_timeout = {}};
  asio::io_context ioc;
  boost::beast::test::stream stream(ioc);
  boost::beast::test::stream peer(ioc);
  stream.connect(peer);
  static constexpr std::size_t kReadSizes[] = {std::numeric_limits<std::size_t>::max(), 1, 7, 300};
  stream.read_size(kReadSizes[static_cast<std::size_t>((data[0] >> 1) & 3)]);
  stream.append(rest);
  stream.close_remote();  // then end of stream

  Observer observer{repo, everything(repo)};
  bool finished = false;
  asio::co_spawn(ioc, server::detail::serve_connection(stream, service, limits, observer),
                 [&](std::exception_ptr err) {
                   FUZZ_CHECK(!err);
                   finished = true;
                 });
  ioc.run();
  FUZZ_CHECK(finished);

  // What went back: 100 Continue interim answers and one answer per request
  // served, nothing else.
  std::string_view out = peer.str();
  int answers = 0;
  while (!out.empty()) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    boost::system::error_code ec;
    while (!out.empty() && !parser.is_done()) {
      const auto used = parser.put(asio::buffer(out.data(), out.size()), ec);
      out.remove_prefix(used);
      if (ec) break;
    }
    FUZZ_CHECK(!ec && parser.is_done());
    const auto res = parser.release();
    if (res.result_int() == 100) continue;
    ++answers;
    check_answer(res, with_key, res.result_int() == 413 ? kMaxBody : 64u << 20);
  }
  FUZZ_CHECK(answers == observer.answered);
  return 0;
}
