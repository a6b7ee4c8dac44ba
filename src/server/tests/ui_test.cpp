// The web UI's files at /ui/: types, ETags, gzip, 304, the redirect, 404s,
// and that the page references only files of its own (no other host).
#include "ui.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "metrics/core/gzip.hpp"
#include "metrics/server/service.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;
using testing::FakeRepository;
using ::testing::HasSubstr;
using testing::make_request;
using testing::run;

class UiTest : public ::testing::Test {
 protected:
  FakeRepository repo_;
  Service service_{repo_, {}};

  Response get(std::string target, std::string accept_encoding = {},
               std::string if_none_match = {}) {
    auto req = make_request(http::verb::get, std::move(target));
    if (!accept_encoding.empty()) req.set(http::field::accept_encoding, accept_encoding);
    if (!if_none_match.empty()) req.set(http::field::if_none_match, if_none_match);
    return run(service_, std::move(req));
  }
};

TEST_F(UiTest, ServesEachFileWithItsType) {
  const std::pair<const char*, const char*> expected[] = {
      {"/ui/", "text/html; charset=utf-8"},
      {"/ui/index.html", "text/html; charset=utf-8"},
      {"/ui/app.js", "text/javascript; charset=utf-8"},
      {"/ui/app.css", "text/css; charset=utf-8"},
      {"/ui/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
      {"/ui/uPlot.min.css", "text/css; charset=utf-8"},
      {"/ui/favicon.svg", "image/svg+xml"},
  };
  for (const auto& [target, type] : expected) {
    auto res = get(target);
    EXPECT_EQ(res.result_int(), 200) << target;
    EXPECT_EQ(res[http::field::content_type], type) << target;
    EXPECT_FALSE(res.body().empty()) << target;
    EXPECT_EQ(res[http::field::content_encoding], "") << target;
    EXPECT_EQ(res[http::field::cache_control], "no-cache") << target;
    EXPECT_EQ(res["X-Content-Type-Options"], "nosniff") << target;
    EXPECT_THAT(std::string(res["Content-Security-Policy"]), HasSubstr("default-src 'none'"));
    EXPECT_THAT(std::string(res[http::field::etag]), ::testing::MatchesRegex("\"[0-9a-f]{20}\""));
  }
  EXPECT_THAT(get("/ui/uPlot.iife.min.js").body(), HasSubstr("uPlot"));
  EXPECT_EQ(get("/ui/").body(), get("/ui/index.html").body());
  // A query string (a shared link's) does not change the file.
  EXPECT_EQ(get("/ui/?x=1").result_int(), 200);
}

TEST_F(UiTest, TheIndexLoadsOnlyItsOwnFiles) {
  const std::string page = get("/ui/").body();
  const std::regex ref(R"((?:src|href)=\"([^\"]*)\")");
  int refs = 0;
  for (std::sregex_iterator it(page.begin(), page.end(), ref), end; it != end; ++it) {
    const std::string target = (*it)[1];
    EXPECT_EQ(target.find("//"), std::string::npos) << target;  // no other host
    if (target.starts_with("#") || target == "/") continue;
    ++refs;
    EXPECT_NE(find_ui_asset(target), nullptr) << target;
    EXPECT_EQ(get("/ui/" + target).result_int(), 200) << target;
  }
  EXPECT_GE(refs, 4);
  for (const auto& a : ui_assets()) {
    if (std::string_view(a.name).starts_with("uPlot")) continue;  // vendored as is
    std::string text(reinterpret_cast<const char*>(a.data), a.size);
    // SVG's namespace name is a URI, not a request.
    for (std::size_t at; (at = text.find("http://www.w3.org/2000/svg")) != std::string::npos;)
      text.erase(at, 26);
    EXPECT_EQ(text.find("http://"), std::string::npos) << a.name;
    EXPECT_EQ(text.find("https://"), std::string::npos) << a.name;
  }
}

TEST_F(UiTest, GzipWhenAcceptedAndTheSameBytesInside) {
  for (const char* target :
       {"/ui/app.js", "/ui/app.css", "/ui/uPlot.iife.min.js", "/ui/uPlot.min.css"}) {
    const auto plain = get(target);
    const auto packed = get(target, "gzip, deflate");
    ASSERT_EQ(packed.result_int(), 200) << target;
    EXPECT_EQ(packed[http::field::content_encoding], "gzip") << target;
    EXPECT_EQ(packed[http::field::vary], "Accept-Encoding") << target;
    EXPECT_LT(packed.body().size(), plain.body().size()) << target;
    EXPECT_EQ(core::gzip_decompress(packed.body(), 1 << 24), plain.body()) << target;
    EXPECT_EQ(packed[http::field::etag], plain[http::field::etag]) << target;
  }
}

TEST_F(UiTest, NotModifiedWhenTheETagMatches) {
  const auto first = get("/ui/app.js");
  const std::string etag(first[http::field::etag]);
  auto res = get("/ui/app.js", "gzip", etag);
  EXPECT_EQ(res.result_int(), 304);
  EXPECT_EQ(res.body(), "");
  EXPECT_EQ(res[http::field::etag], etag);
  EXPECT_EQ(get("/ui/app.js", {}, "\"other\", W/" + etag).result_int(), 304);
  EXPECT_EQ(get("/ui/app.js", {}, "*").result_int(), 304);
  EXPECT_EQ(get("/ui/app.js", {}, "\"other\"").result_int(), 200);
  // Another file's tag is not this one's.
  EXPECT_EQ(get("/ui/app.css", {}, etag).result_int(), 200);
}

TEST_F(UiTest, RedirectsNotFoundAndMethods) {
  auto res = get("/ui");
  EXPECT_EQ(res.result_int(), 308);
  EXPECT_EQ(res[http::field::location], "/ui/");
  res = get("/ui/nope.js");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_THAT(res.body(), HasSubstr("/ui/nope.js"));
  EXPECT_EQ(get("/ui/a/b").result_int(), 404);
  res = run(service_, make_request(http::verb::post, "/ui/app.js"));
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET");
}

TEST_F(UiTest, TheClassicTableLinksToTheUi) {
  auto res = get("/");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_THAT(res.body(), HasSubstr("href=\"/ui/\""));
}

}  // namespace
}  // namespace metrics::server
