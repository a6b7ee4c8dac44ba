#include "metrics/server/html.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace metrics::server {
namespace {

TEST(Html, EscapesNamesAndPrintsValues) {
  std::vector<core::Point> metrics{core::Point::counter("<b>&\"'", 42),
                                   core::Point::gauge("Alloc", 1e21)};
  auto page = render_metrics_page(metrics);
  EXPECT_NE(page.find("&lt;b&gt;&amp;&quot;&#39;"), std::string::npos);
  EXPECT_EQ(page.find("<b>&"), std::string::npos);
  EXPECT_NE(page.find(">42<"), std::string::npos);
  EXPECT_NE(page.find(">1000000000000000000000<"), std::string::npos);
  EXPECT_NE(page.find("2 metrics"), std::string::npos);
  EXPECT_LT(page.find("&lt;b&gt;"), page.find("Alloc"));
}

}  // namespace
}  // namespace metrics::server
