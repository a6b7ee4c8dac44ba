// Requests that a real Prometheus 2.42 (Debian's package) sent with
// `remote_write` while scraping itself, captured on loopback with their
// headers (User-Agent Prometheus/2.42.0+ds, Content-Encoding snappy,
// X-Prometheus-Remote-Write-Version 0.1.0): the decoder reads them, the
// label rules accept them, and the encoder writes the same bytes back.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"

namespace metrics::exposition {
namespace {

std::string read_file(const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(METRICS_EXPOSITION_TEST_DATA) / name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), {}};
}

std::string reencode(const WriteRequestView& req) {
  std::string out;
  for (const auto& s : req.series)
    append_series(out, req.labels_of(s), req.samples_of(s));
  for (const auto& m : req.metadata)
    append_metadata(out, m);
  return out;
}

TEST(PrometheusCapture, SamplesRequestDecodesValidatesAndReencodesByteForByte) {
  const std::string plain =
      snappy_decompress(read_file("prometheus-2.42-samples.snappy"), 32 << 20);
  const WriteRequestView req = decode_write_request(plain);
  ASSERT_GT(req.series.size(), 100U);
  EXPECT_TRUE(req.metadata.empty());
  const auto series = validate(req);
  ASSERT_EQ(series.size(), req.series.size());
  bool found_up = false;
  for (const ValidSeries& s : series) {
    EXPECT_EQ(s.labels.get("job"), "self");
    EXPECT_EQ(s.labels.get("instance"), "127.0.0.1:19392");
    for (const Sample& x : s.samples)
      EXPECT_GT(x.timestamp_ms, 1'700'000'000'000);  // milliseconds, recent
    if (s.name == "up") {
      found_up = true;
      ASSERT_EQ(s.samples.size(), 1U);
      EXPECT_EQ(s.samples[0].value, 1);
    }
  }
  EXPECT_TRUE(found_up);
  // Same fields, same order, same defaults left out: the very same bytes.
  EXPECT_EQ(reencode(req), plain);
}

TEST(PrometheusCapture, MetadataRequestDecodesAndReencodesByteForByte) {
  const std::string plain =
      snappy_decompress(read_file("prometheus-2.42-metadata.snappy"), 32 << 20);
  const WriteRequestView req = decode_write_request(plain);
  EXPECT_TRUE(req.series.empty());
  ASSERT_GT(req.metadata.size(), 10U);
  bool found = false;
  for (const MetadataView& m : req.metadata) {
    EXPECT_FALSE(m.family_name.empty());
    if (m.family_name == "prometheus_build_info") {
      found = true;
      EXPECT_EQ(m.type, static_cast<std::uint32_t>(MetadataType::gauge));
      EXPECT_FALSE(m.help.empty());
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(reencode(req), plain);
}

}  // namespace
}  // namespace metrics::exposition
