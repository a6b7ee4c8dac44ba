#include "metrics/server/html.hpp"

#include <gtest/gtest.h>

#include <cstdint>
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

TEST(Html, ShowsValuesWithUnitsAndTheTimeOfTheLastWrite) {
  std::vector<core::Point> metrics{
      core::Point::gauge("Alloc", 120500.5), core::Point::gauge("GCCPUFraction", 0.0125),
      core::Point::counter("PollCount", 1234567),
      core::Point::gauge("ProcessRSS", 3.5 * 1073741824.0), core::Point::gauge("RandomValue", 0.5)};
  const std::int64_t last = 1'764'693'903'000;  // 2025-12-02 16:45:03 UTC
  auto page = render_metrics_page(metrics, last + 7'000, last);
  EXPECT_NE(page.find(">120500.5</td><td class=\"readable\">117.7 KiB<"), std::string::npos)
      << page;
  EXPECT_NE(page.find(">3.50 GiB<"), std::string::npos);
  EXPECT_NE(page.find(">1.25 %<"), std::string::npos);
  EXPECT_NE(page.find(">1,234,567<"), std::string::npos);
  EXPECT_NE(page.find(">0.5</td><td class=\"readable\"></td>"), std::string::npos);
  EXPECT_NE(page.find("last write <time datetime=\"1764693903000\">2025-12-02 16:45:03 UTC</time>"),
            std::string::npos)
      << page;
  EXPECT_NE(render_metrics_page(metrics, last, 0).find("no write since this server started"),
            std::string::npos);
}

}  // namespace
}  // namespace metrics::server
