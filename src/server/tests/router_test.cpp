#include "metrics/server/router.hpp"

#include <gtest/gtest.h>

#include "metrics/server/service.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;

const RouteTable& table() {
  static const RouteTable t(default_routes());
  return t;
}

RouteMatch route(http::verb method, std::string_view target) {
  RouteMatch m;
  table().match(method, target, m);
  return m;
}

std::string_view name_of(const RouteMatch& m) {
  return m.route != nullptr ? m.route->name : std::string_view("not_found");
}

TEST(Router, TextUpdateSplitsAndDecodesSegments) {
  auto r = route(http::verb::post, "/update/gauge/Heap%20Alloc/1.5?x=1");
  EXPECT_EQ(name_of(r), "update_text");
  EXPECT_EQ(r.param("type"), "gauge");
  EXPECT_EQ(r.param("name"), "Heap Alloc");
  EXPECT_EQ(r.param("value"), "1.5");
  EXPECT_TRUE(r.error.empty());
  EXPECT_FALSE(r.method_not_allowed());
  EXPECT_TRUE(r.query.empty());  // the row declares no query parameters
}

TEST(Router, MissingNameOrValueIsNotFound) {
  for (auto target :
       {"/update/gauge/", "/update/gauge", "/update/counter/", "/update/", "/update/gauge/name",
        "/update/gauge/name/", "/value/gauge/", "/value/gauge", "/update//"}) {
    auto r = route(http::verb::post, target);
    if (std::string_view(target) == "/update/") {
      EXPECT_EQ(name_of(r), "update_json") << target;
      continue;
    }
    EXPECT_EQ(r.route, nullptr) << target;
    EXPECT_FALSE(r.error.empty()) << target;
  }
  EXPECT_EQ(route(http::verb::post, "/update/gauge/").error, "missing metric name");
  EXPECT_EQ(route(http::verb::post, "/update/gauge/x").error, "missing metric value");
  EXPECT_EQ(route(http::verb::get, "/value/gauge").error, "missing metric name");
  EXPECT_EQ(route(http::verb::get, "/nope").error, "unknown path");
}

TEST(Router, ExtraSegmentsAreNotFound) {
  EXPECT_EQ(route(http::verb::post, "/update/gauge/a/1/2").route, nullptr);
  EXPECT_EQ(route(http::verb::post, "/update/gauge/a/1/2").error, "unknown path");
  EXPECT_EQ(route(http::verb::get, "/value/gauge/a/b").route, nullptr);
  EXPECT_EQ(route(http::verb::get, "/nope").route, nullptr);
  EXPECT_EQ(route(http::verb::get, "").route, nullptr);
  EXPECT_EQ(route(http::verb::get, "/ping/").route, nullptr);
  EXPECT_EQ(route(http::verb::post, "/update//").route, nullptr);
}

TEST(Router, EmptyTypeSegmentReachesTheHandler) {
  auto r = route(http::verb::post, "/update//x/1");  // 400 "unknown metric type" later
  EXPECT_EQ(name_of(r), "update_text");
  EXPECT_EQ(r.param("type"), "");
}

TEST(Router, WrongMethodCarriesAllowFromTheTable) {
  auto r = route(http::verb::get, "/update/gauge/a/1");
  EXPECT_EQ(r.route, nullptr);
  EXPECT_EQ(r.allow, "POST");
  EXPECT_EQ(route(http::verb::post, "/value/gauge/a").allow, "GET");
  EXPECT_EQ(route(http::verb::post, "/").allow, "GET");
  EXPECT_EQ(route(http::verb::delete_, "/ping").allow, "GET");
  EXPECT_EQ(route(http::verb::get, "/updates/").allow, "POST");
  EXPECT_EQ(route(http::verb::get, "/updates/").errors, ErrorFormat::json);
  EXPECT_EQ(route(http::verb::get, "/ping").errors, ErrorFormat::text);
  EXPECT_FALSE(route(http::verb::post, "/updates").method_not_allowed());
}

TEST(Router, JsonEndpoints) {
  EXPECT_EQ(name_of(route(http::verb::post, "/update/")), "update_json");
  EXPECT_EQ(name_of(route(http::verb::post, "/update")), "update_json");
  EXPECT_EQ(name_of(route(http::verb::post, "/value/")), "value_json");
  EXPECT_EQ(name_of(route(http::verb::post, "/updates/")), "updates_json");
  EXPECT_EQ(route(http::verb::post, "/updates/").route->errors, ErrorFormat::json);
  EXPECT_EQ(route(http::verb::post, "/update/gauge/a/1").route->errors, ErrorFormat::text);
  EXPECT_EQ(table().error_format("/updates/?x"), ErrorFormat::json);
  EXPECT_EQ(table().error_format("/value/counter/x"), ErrorFormat::text);
  EXPECT_EQ(table().error_format("/nope"), ErrorFormat::text);
}

TEST(Router, EncodedSlashDecodesIntoName) {
  auto r = route(http::verb::post, "/update/gauge/a%2Fb/1");
  EXPECT_EQ(name_of(r), "update_text");
  EXPECT_EQ(r.param("name"), "a/b");  // rejected later by name validation
}

TEST(Router, MalformedEscapeIsAnError) {
  auto r = route(http::verb::post, "/update/gauge/a%2/1");
  EXPECT_EQ(name_of(r), "update_text");
  EXPECT_FALSE(r.error.empty());
  std::string out;
  EXPECT_FALSE(percent_decode("%", out));
  EXPECT_FALSE(percent_decode("%zz", out));
  EXPECT_TRUE(percent_decode("a%41+", out));
  EXPECT_EQ(out, "aA+");
}

// A table of the shape the Prometheus API needs: several methods, declared
// query parameters, repeated keys.
boost::asio::awaitable<Response> no_handler(RequestContext&, const RouteMatch&, std::string&) {
  co_return Response{};
}

constexpr RouteSpec kQueryRoutes[] = {
    {.name = "series",
     .pattern = "/api/v1/series",
     .methods = {http::verb::get, http::verb::post},
     .handler = no_handler,
     .errors = ErrorFormat::json,
     .body = BodyKind::form,
     .query = {"match[]", "start", "end"}},
    {.name = "label_values",
     .pattern = "/api/v1/label/{label:label name}/values",
     .methods = {http::verb::get},
     .handler = no_handler,
     .errors = ErrorFormat::json},
    {.name = "series_delete",
     .pattern = "/api/v1/series",
     .methods = {http::verb::delete_},
     .handler = no_handler},
};

TEST(RouterQuery, DeclaredParametersAreDecodedAndRepeatsKept) {
  RouteTable t(kQueryRoutes);
  RouteMatch m;
  t.match(http::verb::get,
          "/api/v1/series?match%5B%5D=up%7Bjob%3D%22a+b%22%7D&junk=1&match[]=x&end", m);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->name, "series");
  EXPECT_EQ(m.query.size(), 3u);  // junk is not declared
  auto matches = m.query.all("match[]");
  ASSERT_EQ(matches.size(), 2u);
  EXPECT_EQ(matches[0], R"(up{job="a b"})");
  EXPECT_EQ(matches[1], "x");
  EXPECT_EQ(m.query.get("end"), std::optional<std::string_view>(""));
  EXPECT_EQ(m.query.get("start"), std::nullopt);
  EXPECT_EQ(m.query.get("junk"), std::nullopt);

  t.match(http::verb::get, "/api/v1/series?start=%zz", m);
  EXPECT_EQ(m.error, "malformed percent-encoding in query string");
}

TEST(RouterQuery, AllowListsEveryMethodOfThePath) {
  RouteTable t(kQueryRoutes);
  RouteMatch m;
  t.match(http::verb::put, "/api/v1/series", m);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET, POST, DELETE");
  EXPECT_EQ(m.errors, ErrorFormat::json);  // the first row's format
  t.match(http::verb::delete_, "/api/v1/series", m);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->name, "series_delete");
  t.match(http::verb::get, "/api/v1/label/job/values", m);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.param("label"), "job");
  t.match(http::verb::get, "/api/v1/label//values", m);
  EXPECT_EQ(m.error, "missing label name");
}

TEST(RouterQuery, MalformedPatternIsRefused) {
  constexpr RouteSpec bad[] = {{.name = "x", .pattern = "nope", .handler = no_handler}};
  EXPECT_THROW(RouteTable{bad}, std::invalid_argument);
}

TEST(RouterQuery, ParseKeepsOrderAndDecodesPlus) {
  QueryParams q;
  ASSERT_TRUE(q.parse("a=1&&b=x+y%2B&a=2&c"));
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.get("b"), std::optional<std::string_view>("x y+"));
  EXPECT_EQ(q.all("a"), (std::vector<std::string_view>{"1", "2"}));
  EXPECT_EQ(q.get("c"), std::optional<std::string_view>(""));
  QueryParams bad;
  EXPECT_FALSE(bad.parse("a=%4"));
}

}  // namespace
}  // namespace metrics::server
