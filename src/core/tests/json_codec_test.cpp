#include "metrics/core/json_codec.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

using ::testing::HasSubstr;

// Runs f, expects InvalidInput, and returns its message.
template <class F>
std::string invalid_message(F&& f) {
  try {
    f();
  } catch (const InvalidInput& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InvalidInput thrown";
  return {};
}

std::string metric_error(std::string_view json) {
  return invalid_message([&] { (void)decode_update(json); });
}

std::string batch_error(std::string_view json, std::size_t max_items = 100'000) {
  return invalid_message([&] { (void)decode_updates(json, max_items); });
}

TEST(DecodeMetric, Gauge) {
  EXPECT_EQ(decode_update(R"({"id":"Alloc","type":"gauge","value":1.5})"),
            Update::gauge("Alloc", 1.5));
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":7})"), Update::gauge("g", 7));
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":-7})"), Update::gauge("g", -7));
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":1e21})"), Update::gauge("g", 1e21));
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":18446744073709551615})"),
            Update::gauge("g", 18446744073709551615.0));
}

TEST(DecodeMetric, GaugeIntegerBeyond64BitsIsADouble) {
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":1000000000000000000000})"),
            Update::gauge("g", 1e21));
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":-99999999999999999999})"),
            Update::gauge("g", -99999999999999999999.0));
}

TEST(DecodeMetric, Counter) {
  EXPECT_EQ(decode_update(R"({"id":"PollCount","type":"counter","delta":5})"),
            Update::counter("PollCount", 5));
  EXPECT_EQ(decode_update(R"({"id":"c","type":"counter","delta":-5})"), Update::counter("c", -5));
  EXPECT_EQ(decode_update(R"({"id":"c","type":"counter","delta":9223372036854775807})"),
            Update::counter("c", INT64_MAX));
  EXPECT_EQ(decode_update(R"({"id":"c","type":"counter","delta":-9223372036854775808})"),
            Update::counter("c", INT64_MIN));
}

TEST(DecodeMetric, IgnoresUnknownFieldsAndTheOtherValue) {
  EXPECT_EQ(decode_update(R"({"hash":"x","id":"c","extra":[1,{"a":null}],"type":"counter",)"
                          R"("delta":3,"value":9.5})"),
            Update::counter("c", 3));
  EXPECT_EQ(decode_update(R"({"type":"gauge","value":2.5,"delta":4,"id":"g"})"),
            Update::gauge("g", 2.5));
  EXPECT_EQ(decode_update(R"({"id":"g","type":"gauge","value":2.5,"delta":null})"),
            Update::gauge("g", 2.5));
}

TEST(DecodeMetric, WhitespaceAndEscapedId) {
  EXPECT_EQ(
      decode_update(" \n{ \"id\" : \"a\\u00e9\\\"b\" , \"type\" : \"gauge\", \"value\" : 0 }\t"),
      Update::gauge("a\xC3\xA9\"b", 0));
}

TEST(DecodeMetric, CounterDeltaMustBeAnInt64) {
  const std::string want = "counter needs an integer \"delta\"";
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter"})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":1.5})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":1e3})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":1.0})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":"5"})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":null})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":true})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":[5]})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","value":5})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":9223372036854775808})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":18446744073709551615})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":-9223372036854775809})"), want);
  EXPECT_EQ(metric_error(R"({"id":"c","type":"counter","delta":99999999999999999999999})"), want);
}

TEST(DecodeMetric, GaugeValueMustBeAFiniteNumber) {
  const std::string want = "gauge needs a numeric \"value\"";
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge"})"), want);
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":"1.5"})"), want);
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":null})"), want);
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","delta":5})"), want);
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":{}})"), want);
  // JSON has no literal for these; they are not numbers at all.
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":NaN})"), "malformed JSON");
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":Infinity})"), "malformed JSON");
  EXPECT_THAT(metric_error(R"({"id":"g","type":"gauge","value":1e400})"), HasSubstr("number"));
}

TEST(DecodeMetric, IdAndTypeAreRequiredAndChecked) {
  EXPECT_EQ(metric_error(R"({"type":"gauge","value":1})"), "missing \"id\"");
  EXPECT_EQ(metric_error(R"({"id":"g","value":1})"), "missing \"type\"");
  EXPECT_EQ(metric_error(R"({"id":5,"type":"gauge","value":1})"), "\"id\" must be a string");
  EXPECT_EQ(metric_error(R"({"id":"g","type":1,"value":1})"), "\"type\" must be a string");
  EXPECT_THAT(metric_error(R"({"id":"g","type":"histogram","value":1})"),
              HasSubstr("unknown metric type"));
  EXPECT_THAT(metric_error(R"({"id":"g","type":"Gauge","value":1})"),
              HasSubstr("unknown metric type"));
  EXPECT_EQ(metric_error(R"({"id":"","type":"gauge","value":1})"), "metric name is empty");
  EXPECT_EQ(metric_error(R"({"id":"a/b","type":"gauge","value":1})"), "metric name contains '/'");
  EXPECT_EQ(metric_error(R"({"id":"a\u0000b","type":"gauge","value":1})"),
            "metric name contains a control character");
  EXPECT_EQ(metric_error(R"({"id":"a\nb","type":"gauge","value":1})"),
            "metric name contains a control character");
  EXPECT_EQ(metric_error("{\"id\":\"a\nb\",\"type\":\"gauge\",\"value\":1}"), "malformed JSON");
  const std::string long_id =
      R"({"id":")" + std::string(256, 'x') + R"(","type":"gauge","value":1})";
  EXPECT_THAT(metric_error(long_id), HasSubstr("255"));
}

TEST(DecodeMetric, MalformedInput) {
  EXPECT_EQ(metric_error(""), "empty JSON body");
  EXPECT_EQ(metric_error("{"), "malformed JSON");
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":1,})"), "malformed JSON");
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":1}})"), "malformed JSON");
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":01})"), "invalid number in JSON");
  EXPECT_EQ(metric_error(R"({"id":"g","type":"gauge","value":-})"), "invalid number in JSON");
  EXPECT_EQ(metric_error(R"({'id':'g'})"), "malformed JSON");
  EXPECT_EQ(metric_error("[]"), "a metric must be a JSON object");
  EXPECT_EQ(metric_error("5"), "a metric must be a JSON object");
  EXPECT_EQ(metric_error(R"("x")"), "a metric must be a JSON object");
}

TEST(DecodeMetric, RejectsInvalidUtf8AnywhereInTheDocument) {
  EXPECT_EQ(metric_error("{\"id\":\"a\xFF\",\"type\":\"gauge\",\"value\":1}"),
            "JSON is not valid UTF-8");
  EXPECT_EQ(metric_error("{\"id\":\"a\",\"type\":\"gauge\",\"value\":1,\"x\":\"\xC0\xAF\"}"),
            "JSON is not valid UTF-8");
  EXPECT_EQ(metric_error("{\"id\":\"\xED\xA0\x80\",\"type\":\"gauge\",\"value\":1}"),
            "JSON is not valid UTF-8");
  // A lone surrogate written as an escape is not a character either.
  EXPECT_EQ(metric_error(R"({"id":"\ud800","type":"gauge","value":1})"), "malformed JSON");
}

TEST(DecodeMetric, RejectsDeepNesting) {
  std::string deep = R"({"id":"g","type":"gauge","value":1,"x":)";
  for (std::size_t i = 0; i < kMaxJsonDepth + 5; ++i)
    deep += '[';
  for (std::size_t i = 0; i < kMaxJsonDepth + 5; ++i)
    deep += ']';
  deep += '}';
  EXPECT_EQ(metric_error(deep), "JSON is nested too deeply");

  std::string ok = R"({"id":"g","type":"gauge","value":1,"x":)";
  for (std::size_t i = 0; i < kMaxJsonDepth - 2; ++i)
    ok += '[';
  for (std::size_t i = 0; i < kMaxJsonDepth - 2; ++i)
    ok += ']';
  ok += '}';
  EXPECT_EQ(decode_update(ok), Update::gauge("g", 1));
}

TEST(DecodeMetric, HugeUnpaddedInputs) {
  // Larger than the reusable parser's limit; also checks that reading never
  // relies on padding past the end of the caller's buffer.
  std::string big =
      R"({"id":"g","type":"gauge","pad":")" + std::string(3 << 20, 'p') + R"(","value":2})";
  EXPECT_EQ(decode_update(big), Update::gauge("g", 2));
  big.shrink_to_fit();
  EXPECT_EQ(decode_update(std::string_view(big)), Update::gauge("g", 2));
}

TEST(DecodeKey, ReadsIdentityOnly) {
  EXPECT_EQ(decode_value_query(R"({"id":"Alloc","type":"gauge"})").key,
            (MetricKey{MetricType::gauge, "Alloc"}));
  EXPECT_EQ(decode_value_query(R"({"id":"c","type":"counter","delta":"junk","value":[]})").key,
            (MetricKey{MetricType::counter, "c"}));
  EXPECT_EQ(invalid_message([] { (void)decode_value_query(R"({"type":"gauge"})"); }),
            "missing \"id\"");
  EXPECT_EQ(invalid_message([] { (void)decode_value_query(R"({"id":"x"})"); }), "missing \"type\"");
  EXPECT_THAT(invalid_message([] { (void)decode_value_query(R"({"id":"x","type":"t"})"); }),
              HasSubstr("unknown metric type"));
  EXPECT_EQ(invalid_message([] { (void)decode_value_query("[1]"); }),
            "a metric must be a JSON object");
  EXPECT_EQ(invalid_message([] { (void)decode_value_query("nope"); }), "malformed JSON");
}

TEST(DecodeBatch, KeepsOrderAndRepeats) {
  const auto batch = decode_updates(
      R"([{"id":"a","type":"counter","delta":1},{"id":"b","type":"gauge","value":2.5},)"
      R"({"id":"a","type":"counter","delta":2}])");
  ASSERT_EQ(batch.updates.size(), 3U);
  EXPECT_EQ(batch.updates[0], Update::counter("a", 1));
  EXPECT_EQ(batch.updates[1], Update::gauge("b", 2.5));
  EXPECT_EQ(batch.updates[2], Update::counter("a", 2));
  EXPECT_TRUE(decode_updates("[]").updates.empty());
  EXPECT_TRUE(decode_updates(" [ ] ").updates.empty());
}

TEST(DecodeBatch, NamesTheBadElement) {
  EXPECT_EQ(batch_error(R"([{"id":"a","type":"gauge","value":1},)"
                        R"({"id":"b","type":"gauge","value":1},)"
                        R"({"id":"c","type":"gauge","value":1},)"
                        R"({"id":"d","type":"counter","delta":1.5}])"),
            "metric 3: counter needs an integer \"delta\"");
  EXPECT_EQ(batch_error(R"([{"id":"a","type":"gauge","value":1},5])"),
            "metric 1: a metric must be a JSON object");
  EXPECT_EQ(batch_error(R"([{"type":"gauge","value":1}])"), "metric 0: missing \"id\"");
}

TEST(DecodeBatch, RequiresAnArray) {
  EXPECT_EQ(batch_error(R"({"id":"a","type":"gauge","value":1})"),
            R"(expected a JSON array of metrics or an envelope {"labels":{...},"metrics":[...]})");
  EXPECT_THAT(batch_error("null"), HasSubstr("expected a JSON array of metrics or an envelope"));
  EXPECT_EQ(batch_error("[{}"), "malformed JSON");
  EXPECT_EQ(batch_error(""), "empty JSON body");
}

TEST(DecodeBatch, MaxItemsBound) {
  const std::string two =
      R"([{"id":"a","type":"gauge","value":1},{"id":"b","type":"gauge","value":1}])";
  EXPECT_EQ(decode_updates(two, 2).updates.size(), 2U);
  EXPECT_THAT(batch_error(two, 1), HasSubstr("too many metrics"));
  EXPECT_THAT(batch_error("[{}]", 0), HasSubstr("too many metrics"));
  EXPECT_TRUE(decode_updates("[]", 0).updates.empty());
}

TEST(DecodeBatch, BigIntegerWideningLeavesInt64DeltasAlone) {
  // The document holds an integer beyond 64 bits (a gauge), which takes the
  // slow path; the int64 extremes of the counters must still be integers.
  const auto batch =
      decode_updates(R"([{"id":"c","type":"counter","delta":-9223372036854775808},)"
                     R"({"id":"g","type":"gauge","value":100000000000000000000000},)"
                     R"({"id":"s","type":"gauge","value":0,"note":"12345678901234567890123"},)"
                     R"({"id":"d","type":"counter","delta":9223372036854775807}])");
  ASSERT_EQ(batch.updates.size(), 4U);
  EXPECT_EQ(batch.updates[0], Update::counter("c", INT64_MIN));
  EXPECT_EQ(batch.updates[1], Update::gauge("g", 1e23));
  EXPECT_EQ(batch.updates[2], Update::gauge("s", 0));
  EXPECT_EQ(batch.updates[3], Update::counter("d", INT64_MAX));
  EXPECT_EQ(batch_error(R"([{"id":"c","type":"counter","delta":100000000000000000000000}])"),
            "metric 0: counter needs an integer \"delta\"");
}

TEST(DecodeBatch, RandomMutationsOnlyEverThrowInvalidInput) {
  const std::string valid = R"([{"id":"a","type":"counter","delta":-9223372036854775808},)"
                            R"({"id":"b\"c","type":"gauge","value":123456789012345678901234.5e-3},)"
                            R"({"id":"d","type":"gauge","value":99999999999999999999999}])";
  ASSERT_EQ(decode_updates(valid).updates.size(), 3U);
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789-+.eE\"\\[]{}:, \x80\xff";
  for (int i = 0; i < 5000; ++i) {
    std::string text = valid;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.erase(pos, 1);
          break;
        default:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    try {
      const auto batch = decode_updates(text);
      for (const Update& m : batch.updates)
        EXPECT_FALSE(validate_name(m.id).has_value());
    } catch (const InvalidInput&) {
    }
  }
}

TEST(DecodeBatch, WorksFromManyThreads) {
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &ok] {
      for (int i = 0; i < 200; ++i) {
        const std::string json = R"([{"id":"t)" + std::to_string(t) +
                                 R"(","type":"counter","delta":)" + std::to_string(i) + "}]";
        const auto batch = decode_updates(json);
        if (batch.updates.size() == 1 && batch.updates[0].delta == i)
          ++ok[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_THAT(ok, ::testing::Each(200));
}

TEST(Encode, MetricShapes) {
  EXPECT_EQ(encode_update(Update::gauge("x", 1.5)), R"({"id":"x","type":"gauge","value":1.5})");
  EXPECT_EQ(encode_update(Update::counter("x", 5)), R"({"id":"x","type":"counter","delta":5})");
  EXPECT_EQ(encode_update(Update::counter("x", INT64_MIN)),
            R"({"id":"x","type":"counter","delta":-9223372036854775808})");
  EXPECT_EQ(encode_update(Update::gauge("x", 1e21)),
            R"({"id":"x","type":"gauge","value":1000000000000000000000})");
  EXPECT_EQ(encode_update(Update::gauge("x", -0.0)), R"({"id":"x","type":"gauge","value":-0.0})");
  EXPECT_EQ(encode_update(Update::gauge("x", 120500)),
            R"({"id":"x","type":"gauge","value":120500})");
}

TEST(Encode, NonFiniteGaugeBecomesNullAndIsRejectedOnDecode) {
  const std::string nan = encode_update(Update::gauge("x", std::nan("")));
  EXPECT_EQ(nan, R"({"id":"x","type":"gauge","value":null})");
  EXPECT_EQ(encode_update(Update::gauge("x", -std::numeric_limits<double>::infinity())),
            R"({"id":"x","type":"gauge","value":null})");
  EXPECT_EQ(metric_error(nan), "gauge needs a numeric \"value\"");
}

TEST(Encode, Batch) {
  EXPECT_EQ(encode_updates({}), "[]");
  const std::vector<Update> metrics = {Update::gauge("a", 0.1), Update::counter("b", 2)};
  EXPECT_EQ(encode_updates(metrics),
            R"([{"id":"a","type":"gauge","value":0.1},{"id":"b","type":"counter","delta":2}])");
}

TEST(Encode, EscapesStrings) {
  std::string out;
  append_json_string(out, "a\"b\\c\n\x01\x1f\x7f/é");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\u000a\\u0001\\u001f\x7f/é\"");
  out.clear();
  append_json_string(out, std::string_view("\0", 1));
  EXPECT_EQ(out, R"("\u0000")");
  out.clear();
  append_json_string(out, "");
  EXPECT_EQ(out, R"("")");
}

TEST(Encode, ReplacesInvalidUtf8SoTheOutputStaysJson) {
  std::string out;
  append_json_string(out,
                     "a\xFF"
                     "b\xC0\xAF");
  EXPECT_EQ(out,
            "\"a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

TEST(Encode, Error) {
  EXPECT_EQ(encode_error("bad \"x\""), R"({"error":"bad \"x\""})");
  EXPECT_EQ(encode_error(""), R"({"error":""})");
}

TEST(RoundTrip, EncodeThenDecode) {
  const std::vector<Update> metrics = {
      Update::gauge("a", 0.1),
      Update::gauge("big", 1e21),
      Update::gauge("huge", std::numeric_limits<double>::max()),
      Update::gauge("-huge", std::numeric_limits<double>::lowest()),
      Update::gauge("tiny", std::numeric_limits<double>::denorm_min()),
      Update::gauge("neg", -1.75),
      Update::gauge("quote\"back\\slash", 3),
      Update::counter("max", INT64_MAX),
      Update::counter("min", INT64_MIN),
      Update::counter("名前", 0),
  };
  const auto back = decode_updates(encode_updates(metrics)).updates;
  EXPECT_EQ(back, metrics);
  const auto neg_zero = decode_update(encode_update(Update::gauge("z", -0.0)));
  EXPECT_TRUE(std::signbit(neg_zero.value));
}

TEST(DecodeUpdate, CarriesItsLabels) {
  const Update u =
      decode_update(R"({"id":"c","type":"counter","delta":2,"labels":{"job":"a","i":"1","e":""}})");
  EXPECT_EQ(u, Update::counter("c", 2, Labels::make({{"job", "a"}, {"i", "1"}})));
  EXPECT_EQ(decode_update(R"({"id":"c","type":"counter","delta":2,"labels":{}})"),
            Update::counter("c", 2));
}

TEST(DecodeUpdate, EveryLabelErrorNamesTheLabel) {
  const auto err = [](std::string_view labels) {
    return metric_error(std::string(R"({"id":"g","type":"gauge","value":1,"labels":)") +
                        std::string(labels) + "}");
  };
  EXPECT_THAT(err(R"({"1a":"x"})"), HasSubstr("\"1a\""));
  EXPECT_THAT(err(R"({"a.b":"x"})"), HasSubstr("\"a.b\""));
  EXPECT_THAT(err(R"({"__x":"x"})"), HasSubstr("reserved"));
  EXPECT_THAT(err(R"({"n":5})"), HasSubstr("label \"n\": value must be a string"));
  EXPECT_THAT(err(R"({"n":"1","n":"2"})"), HasSubstr("label \"n\" is given twice"));
  EXPECT_THAT(err(R"(["a"])"), HasSubstr("\"labels\" must be an object"));
  EXPECT_THAT(err("{\"v\":\"" + std::string(1025, 'x') + "\"}"),
              HasSubstr("\"v\": value is longer"));
  EXPECT_THAT(err("{\"" + std::string(129, 'n') + "\":\"x\"}"), HasSubstr("longer than 128"));
  std::string many = "{";
  for (int i = 0; i < 33; ++i)
    many += (i != 0 ? ",\"l" : "\"l") + std::to_string(i) + "\":\"v\"";
  many += "}";
  EXPECT_THAT(err(many), HasSubstr("too many labels"));
}

TEST(DecodeUpdates, EnvelopeLabelsApplyToEveryMetric) {
  const auto batch =
      decode_updates(R"({"labels":{"instance":"h:1","job":"api","zone":"a"},"metrics":[)"
                     R"({"id":"c","type":"counter","delta":1},)"
                     R"({"id":"g","type":"gauge","value":2,"labels":{"zone":"b","disk":"sda"}},)"
                     R"({"id":"h","type":"gauge","value":3,"labels":{"job":""}}]})");
  EXPECT_TRUE(batch.envelope);
  EXPECT_EQ(batch.labels, Labels::make({{"instance", "h:1"}, {"job", "api"}, {"zone", "a"}}));
  ASSERT_EQ(batch.updates.size(), 3U);
  EXPECT_EQ(batch.updates[0], Update::counter("c", 1, batch.labels));
  EXPECT_EQ(
      batch.updates[1],
      Update::gauge(
          "g", 2,
          Labels::make({{"instance", "h:1"}, {"job", "api"}, {"zone", "b"}, {"disk", "sda"}})));
  EXPECT_EQ(batch.updates[2],
            Update::gauge("h", 3, Labels::make({{"instance", "h:1"}, {"zone", "a"}})));
}

TEST(DecodeUpdates, EnvelopeShapes) {
  const auto no_labels = decode_updates(R"({"metrics":[{"id":"c","type":"counter","delta":1}]})");
  EXPECT_TRUE(no_labels.envelope);
  EXPECT_EQ(no_labels.updates, std::vector<Update>{Update::counter("c", 1)});
  EXPECT_TRUE(decode_updates(R"({"labels":{"a":"1"},"metrics":[]})").updates.empty());
  EXPECT_FALSE(decode_updates("[]").envelope);
  EXPECT_THAT(batch_error(R"({"labels":{"a":"1"}})"), HasSubstr("or an envelope"));
  EXPECT_EQ(batch_error(R"({"metrics":{}})"), "envelope: \"metrics\" must be an array of metrics");
  EXPECT_EQ(batch_error(R"({"labels":{"__a":"1"},"metrics":[]})"),
            "envelope: label \"__a\": names starting with \"__\" are reserved");
  EXPECT_THAT(batch_error(R"({"labels":{"a":"1"},"metrics":[{"id":"c","type":"counter",)"
                          R"("delta":1,"labels":{"b-c":"x"}}]})"),
              HasSubstr("metric 0: label \"b-c\""));
}

TEST(DecodeUpdates, MergedLabelsPastTheLimitAreRejected) {
  std::string env = R"({"labels":{)";
  std::string own;
  for (int i = 0; i < 20; ++i) {
    env += (i != 0 ? ",\"e" : "\"e") + std::to_string(i) + "\":\"v\"";
    own += (i != 0 ? ",\"o" : "\"o") + std::to_string(i) + "\":\"v\"";
  }
  const std::string body =
      env + R"(},"metrics":[{"id":"c","type":"counter","delta":1,"labels":{)" + own + "}}]}";
  EXPECT_THAT(batch_error(body), HasSubstr("too many labels"));
}

TEST(DecodeValueQuery, LabelsSelectASeries) {
  const ValueQuery classic = decode_value_query(R"({"id":"c","type":"counter"})");
  EXPECT_FALSE(classic.labels.has_value());
  const ValueQuery unlabelled = decode_value_query(R"({"id":"c","type":"counter","labels":{}})");
  ASSERT_TRUE(unlabelled.labels.has_value());
  EXPECT_TRUE(unlabelled.labels->empty());
  const ValueQuery series =
      decode_value_query(R"({"id":"c","type":"counter","labels":{"job":"a","x":""}})");
  EXPECT_EQ(series.labels, Labels::make({{"job", "a"}}));
  EXPECT_THROW((void)decode_value_query(R"({"id":"c","type":"counter","labels":{"-":"a"}})"),
               InvalidInput);
}

TEST(Encode, LabelsFollowAndOnlyWhenPresent) {
  const Labels l = Labels::make({{"job", "a\"b"}, {"instance", "h:1"}});
  EXPECT_EQ(encode_point(Point::counter("c", 7, l)),
            R"({"id":"c","type":"counter","delta":7,"labels":{"instance":"h:1","job":"a\"b"}})");
  EXPECT_EQ(encode_point(Point::gauge("g", 1.5)), R"({"id":"g","type":"gauge","value":1.5})");
  EXPECT_EQ(encode_update(Update::gauge("g", 2, l)),
            R"({"id":"g","type":"gauge","value":2,"labels":{"instance":"h:1","job":"a\"b"}})");
  const std::vector<Update> updates = {Update::counter("c", 1), Update::gauge("g", 2)};
  const std::string env = encode_envelope(l, updates);
  EXPECT_EQ(env, R"({"labels":{"instance":"h:1","job":"a\"b"},"metrics":[)"
                 R"({"id":"c","type":"counter","delta":1},{"id":"g","type":"gauge","value":2}]})");
  const auto back = decode_updates(env);
  EXPECT_EQ(back.updates[0], Update::counter("c", 1, l));
  EXPECT_EQ(back.updates[1], Update::gauge("g", 2, l));
}

}  // namespace
}  // namespace metrics::core
