// JSON shapes of the Prometheus HTTP API and Go's number formatting.
#include "metrics/query/json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace metrics::query {
namespace {

TEST(Json, ValuesFormatLikePrometheusMarshalValue) {
  EXPECT_EQ(format_value(1), "1");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(-2.5), "-2.5");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(999999999999999900000.0), "999999999999999900000");
  EXPECT_EQ(format_value(1e-7), "1e-07");
  EXPECT_EQ(format_value(0.000001), "0.000001");
  EXPECT_EQ(format_value(-5.567339944015053e-10), "-5.567339944015053e-10");
  EXPECT_EQ(format_value(2.333744150959565e+202), "2.333744150959565e+202");
  EXPECT_EQ(format_label_value(1e21), "1000000000000000000000");
  EXPECT_EQ(format_label_value(1e-7), "0.0000001");
  EXPECT_EQ(format_label_value(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(format_label_value(0.0), "0");
  EXPECT_EQ(format_label_value(-0.0), "-0");
  EXPECT_EQ(format_label_value(12.5), "12.5");
  EXPECT_EQ(format_label_value(100), "100");
  EXPECT_EQ(format_label_value(0.0123), "0.0123");
  EXPECT_EQ(format_value(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(format_value(-0.0), "-0");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(Json, TimestampsAreSecondsWithThreeDecimals) {
  EXPECT_EQ(format_timestamp(0), "0");
  EXPECT_EQ(format_timestamp(1000), "1");
  EXPECT_EQ(format_timestamp(1500), "1.500");
  EXPECT_EQ(format_timestamp(1005), "1.005");
  EXPECT_EQ(format_timestamp(1050), "1.050");
  EXPECT_EQ(format_timestamp(-1500), "-1.500");
}

TEST(Json, ResultShapes) {
  LabelSet labels = make_labels({{"__name__", "up"}, {"job", "a\"b"}});
  EXPECT_EQ(encode_data(Vector{{labels, 1, 1500}}),
            R"({"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},)"
            R"("value":[1.500,"1"]}]})");
  EXPECT_EQ(encode_data(Vector{}), R"({"resultType":"vector","result":[]})");
  EXPECT_EQ(encode_data(Matrix{{{}, {{1000, 0.5}, {2000, 2}}}}),
            R"({"resultType":"matrix","result":[{"metric":{},"values":[[1,"0.5"],[2,"2"]]}]})");
  EXPECT_EQ(encode_data(Scalar{3000, 4}), R"({"resultType":"scalar","result":[3,"4"]})");
  EXPECT_EQ(encode_data(String{3000, "x"}), R"({"resultType":"string","result":[3,"x"]})");
}

TEST(Json, StringsAreEscapedLikeEncodingJson) {
  EXPECT_EQ(encode_data(String{0, "a<b>&\"\\\n\x01"}),
            R"({"resultType":"string","result":[0,"a\u003cb\u003e\u0026\"\\\n\u0001"]})");
}

TEST(Json, ErrorsCarryTheErrorType) {
  EXPECT_EQ(encode_error(QueryError(ErrorType::execution, "boom")),
            R"({"status":"error","errorType":"execution","error":"boom"})");
  EXPECT_EQ(encode_error(QueryError(ErrorType::bad_data, "x")),
            R"({"status":"error","errorType":"bad_data","error":"x"})");
}

}  // namespace
}  // namespace metrics::query
