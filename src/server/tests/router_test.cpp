#include "metrics/server/router.hpp"

#include <gtest/gtest.h>

namespace metrics::server {
namespace {
namespace http = boost::beast::http;

TEST(Router, TextUpdateSplitsAndDecodesSegments) {
  auto r = route(http::verb::post, "/update/gauge/Heap%20Alloc/1.5?x=1");
  EXPECT_EQ(r.endpoint, Endpoint::update_text);
  EXPECT_EQ(r.type, "gauge");
  EXPECT_EQ(r.name, "Heap Alloc");
  EXPECT_EQ(r.value, "1.5");
  EXPECT_TRUE(r.error.empty());
  EXPECT_FALSE(r.method_not_allowed());
}

TEST(Router, MissingNameOrValueIsNotFound) {
  for (auto target :
       {"/update/gauge/", "/update/gauge", "/update/counter/", "/update/", "/update/gauge/name",
        "/update/gauge/name/", "/value/gauge/", "/value/gauge"}) {
    auto r = route(http::verb::post, target);
    if (std::string_view(target) == "/update/") {
      EXPECT_EQ(r.endpoint, Endpoint::update_json) << target;
      continue;
    }
    EXPECT_EQ(r.endpoint, Endpoint::not_found) << target;
    EXPECT_FALSE(r.error.empty()) << target;
  }
}

TEST(Router, ExtraSegmentsAreNotFound) {
  EXPECT_EQ(route(http::verb::post, "/update/gauge/a/1/2").endpoint, Endpoint::not_found);
  EXPECT_EQ(route(http::verb::get, "/value/gauge/a/b").endpoint, Endpoint::not_found);
  EXPECT_EQ(route(http::verb::get, "/nope").endpoint, Endpoint::not_found);
  EXPECT_EQ(route(http::verb::get, "").endpoint, Endpoint::not_found);
}

TEST(Router, WrongMethodCarriesAllow) {
  auto r = route(http::verb::get, "/update/gauge/a/1");
  EXPECT_EQ(r.endpoint, Endpoint::update_text);
  EXPECT_EQ(r.allow, "POST");
  EXPECT_EQ(route(http::verb::post, "/value/gauge/a").allow, "GET");
  EXPECT_EQ(route(http::verb::post, "/").allow, "GET");
  EXPECT_EQ(route(http::verb::delete_, "/ping").allow, "GET");
  EXPECT_EQ(route(http::verb::get, "/updates/").allow, "POST");
  EXPECT_FALSE(route(http::verb::post, "/updates").method_not_allowed());
}

TEST(Router, JsonEndpoints) {
  EXPECT_EQ(route(http::verb::post, "/update/").endpoint, Endpoint::update_json);
  EXPECT_EQ(route(http::verb::post, "/value/").endpoint, Endpoint::value_json);
  EXPECT_EQ(route(http::verb::post, "/updates/").endpoint, Endpoint::updates_json);
  EXPECT_TRUE(is_json_endpoint(Endpoint::updates_json));
  EXPECT_FALSE(is_json_endpoint(Endpoint::update_text));
}

TEST(Router, EncodedSlashDecodesIntoName) {
  auto r = route(http::verb::post, "/update/gauge/a%2Fb/1");
  EXPECT_EQ(r.endpoint, Endpoint::update_text);
  EXPECT_EQ(r.name, "a/b");  // rejected later by name validation
}

TEST(Router, MalformedEscapeIsAnError) {
  auto r = route(http::verb::post, "/update/gauge/a%2/1");
  EXPECT_EQ(r.endpoint, Endpoint::update_text);
  EXPECT_FALSE(r.error.empty());
  std::string out;
  EXPECT_FALSE(percent_decode("%", out));
  EXPECT_FALSE(percent_decode("%zz", out));
  EXPECT_TRUE(percent_decode("a%41+", out));
  EXPECT_EQ(out, "aA+");
}

}  // namespace
}  // namespace metrics::server
