// Parser tests: precedence and associativity, literals, durations,
// modifiers, grouping, and errors that give the position and say what is
// wrong or not supported.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/query/ast.hpp"
#include "metrics/query/error.hpp"

namespace metrics::query {
namespace {

template <typename T>
const T& as(const ExprPtr& e) {
  return dynamic_cast<const T&>(*e);
}

double number(std::string_view q) {
  return as<NumberLiteral>(parse(q)).value;
}

QueryError parse_error(std::string_view q) {
  try {
    (void)parse(q);
  } catch (const QueryError& e) {
    return e;
  }
  ADD_FAILURE() << q << " parsed";
  return QueryError(ErrorType::execution, "");
}

TEST(Parser, MultiplicationBindsTighterThanAddition) {
  ExprPtr e = parse("1 + 2 * 3");
  const auto& add = as<Binary>(e);
  EXPECT_EQ(add.op, BinaryOp::add);
  EXPECT_EQ(dynamic_cast<const Binary&>(*add.rhs).op, BinaryOp::mul);
}

TEST(Parser, PowerIsRightAssociative) {
  ExprPtr e = parse("2 ^ 3 ^ 2");
  const auto& outer = as<Binary>(e);
  EXPECT_EQ(outer.lhs->kind, ExprKind::number);
  EXPECT_EQ(dynamic_cast<const Binary&>(*outer.rhs).op, BinaryOp::pow);
}

TEST(Parser, SubtractionIsLeftAssociative) {
  ExprPtr outer_expr = parse("5 - 2 - 1");
  const auto& outer = as<Binary>(outer_expr);
  EXPECT_EQ(outer.lhs->kind, ExprKind::binary);
  EXPECT_EQ(outer.rhs->kind, ExprKind::number);
}

TEST(Parser, UnaryMinusBindsLooserThanPower) {
  ExprPtr e = parse("-2 ^ 2");
  ASSERT_EQ(e->kind, ExprKind::unary);
  EXPECT_EQ(as<Unary>(e).expr->kind, ExprKind::binary);
  EXPECT_EQ(number("-2"), -2);
}

TEST(Parser, SetOperatorsHaveTheLowestPrecedence) {
  ExprPtr e_expr = parse("a or b and c > 1");
  const auto& e = as<Binary>(e_expr);
  EXPECT_EQ(e.op, BinaryOp::lor);
  const auto& rhs = dynamic_cast<const Binary&>(*e.rhs);
  EXPECT_EQ(rhs.op, BinaryOp::land);
  EXPECT_EQ(rhs.matching.card, Cardinality::many_to_many);
}

TEST(Parser, NumberLiterals) {
  EXPECT_EQ(number("0x1F"), 31);
  EXPECT_EQ(number("010"), 8);  // Go's ParseInt with base 0: octal
  EXPECT_EQ(number("1e3"), 1000);
  EXPECT_EQ(number(".5"), 0.5);
  EXPECT_TRUE(std::isinf(number("Inf")));
  EXPECT_TRUE(std::isinf(number("-inf")));
  EXPECT_TRUE(std::isnan(number("NaN")));
}

TEST(Parser, StringLiterals) {
  EXPECT_EQ(as<StringLiteral>(parse(R"("a\"b\n\x41\u00e9")")).value, "a\"b\nA\xc3\xa9");
  EXPECT_EQ(as<StringLiteral>(parse(R"('it\'s')")).value, "it's");
  EXPECT_EQ(as<StringLiteral>(parse("`raw\\n`")).value, "raw\\n");
}

TEST(Parser, SelectorsAndMatchers) {
  ExprPtr vs_expr = parse(R"(up{job="api", env!="dev", i=~"a|b", z!~"x",})");
  const auto& vs = as<VectorSelector>(vs_expr);
  EXPECT_EQ(vs.name, "up");
  ASSERT_EQ(vs.matchers.size(), 5u);
  EXPECT_EQ(vs.matchers[2].type(), MatchType::regex);
  EXPECT_TRUE(vs.matchers[2].matches("a"));
  EXPECT_FALSE(vs.matchers[2].matches("ab"));  // fully anchored
  EXPECT_EQ(vs.matchers.back().name(), "__name__");
  ExprPtr named_expr = parse(R"({__name__="metric.with.dots"})");
  const auto& named = as<VectorSelector>(named_expr);
  EXPECT_TRUE(named.name.empty());
  EXPECT_EQ(named.matchers[0].value(), "metric.with.dots");
}

TEST(Parser, RangesDurationsOffsetAndAt) {
  ExprPtr ms_expr = parse("x[1h30m] offset -5m @ 123.456");
  const auto& ms = as<MatrixSelector>(ms_expr);
  EXPECT_EQ(ms.range_ms, 5'400'000);
  EXPECT_EQ(ms.vs->offset_ms, -300'000);
  EXPECT_EQ(ms.vs->at.kind, AtModifier::Kind::time);
  EXPECT_EQ(ms.vs->at.ms, 123'456);
  EXPECT_EQ(as<VectorSelector>(parse("x @ end()")).at.kind, AtModifier::Kind::end);
  EXPECT_EQ(as<VectorSelector>(parse("x @ start() offset 1m")).offset_ms, 60'000);
}

TEST(Parser, Subqueries) {
  ExprPtr sq_expr = parse("rate(x[5m])[30m:1m] offset 2m");
  const auto& sq = as<Subquery>(sq_expr);
  EXPECT_EQ(sq.range_ms, 1'800'000);
  EXPECT_EQ(sq.step_ms, 60'000);
  EXPECT_EQ(sq.offset_ms, 120'000);
  EXPECT_EQ(as<Subquery>(parse("x[10m:]")).step_ms, 0);  // the default step
}

TEST(Parser, AggregationsWithGroupingBeforeOrAfter) {
  ExprPtr a_expr = parse("sum by (job, instance) (x)");
  const auto& a = as<Aggregate>(a_expr);
  EXPECT_EQ(a.grouping, (std::vector<std::string>{"instance", "job"}));
  EXPECT_FALSE(a.without);
  ExprPtr b_expr = parse("SUM(x) WITHOUT (job)");
  const auto& b = as<Aggregate>(b_expr);
  EXPECT_TRUE(b.without);
  ExprPtr t_expr = parse("topk(3, x)");
  const auto& t = as<Aggregate>(t_expr);
  EXPECT_EQ(t.param->kind, ExprKind::number);
  EXPECT_EQ(as<Aggregate>(parse(R"(count_values("v", x))")).param->kind, ExprKind::string);
}

TEST(Parser, VectorMatchingModifiers) {
  ExprPtr b_expr = parse("a * on(job) group_left(version, x) b");
  const auto& b = as<Binary>(b_expr);
  EXPECT_TRUE(b.matching.on);
  EXPECT_EQ(b.matching.labels, (std::vector<std::string>{"job"}));
  EXPECT_EQ(b.matching.card, Cardinality::many_to_one);
  EXPECT_EQ(b.matching.include, (std::vector<std::string>{"version", "x"}));
  ExprPtr c_expr = parse("a > bool ignoring(x) group_right b");
  const auto& c = as<Binary>(c_expr);
  EXPECT_TRUE(c.return_bool);
  EXPECT_FALSE(c.matching.on);
  EXPECT_EQ(c.matching.card, Cardinality::one_to_many);
}

TEST(Parser, ErrorsGivePositionAndReason) {
  QueryError e = parse_error("sum(x");
  EXPECT_EQ(e.type(), ErrorType::bad_data);
  EXPECT_EQ(e.position(), 5u);
  EXPECT_STREQ(e.what(), "1:6: parse error: unexpected end of input in aggregation");

  e = parse_error("x +\n  )");
  EXPECT_EQ(e.position(), 6u);
  EXPECT_EQ(std::string(e.what()).rfind("2:3: parse error:", 0), 0u) << e.what();

  e = parse_error("rate(x)");
  EXPECT_EQ(e.position(), 5u);
  EXPECT_NE(std::string(e.what()).find(
                "expected type range vector in call to function \"rate\", got instant vector"),
            std::string::npos)
      << e.what();
}

TEST(Parser, TypeAndModifierErrors) {
  auto message = [](std::string_view q) { return std::string(parse_error(q).what()); };
  EXPECT_NE(message("1 > 2").find("comparisons between scalars must use BOOL modifier"),
            std::string::npos);
  EXPECT_NE(message("x + bool y").find("bool modifier can only be used on comparison"),
            std::string::npos);
  EXPECT_NE(message("x and 1").find("set operator \"and\" not allowed in binary scalar"),
            std::string::npos);
  EXPECT_NE(message("x and on(a) group_left y").find("no grouping allowed for \"and\""),
            std::string::npos);
  EXPECT_NE(message("x[5m] + 1").find("binary expression must contain only scalar and instant"),
            std::string::npos);
  EXPECT_NE(message("sum(x)[5m]").find("ranges only allowed for vector selectors"),
            std::string::npos);
  EXPECT_NE(message("sum(x) offset 5m").find("offset modifier must be preceded by"),
            std::string::npos);
  EXPECT_NE(message("x offset 1m offset 2m").find("offset may not be set multiple times"),
            std::string::npos);
  EXPECT_NE(message(R"({a=~".*"})").find("at least one non-empty matcher"), std::string::npos);
  EXPECT_NE(message(R"(x{a=~"("})").find("error parsing regexp"), std::string::npos);
  EXPECT_NE(message(R"(x{__name__="y"})").find("metric name must not be set twice"),
            std::string::npos);
  EXPECT_NE(message("5m").find("unexpected duration"), std::string::npos);
  EXPECT_NE(message("1.5h").find("bad number or duration syntax"), std::string::npos);
  EXPECT_NE(message("x[300y]").find("bad number or duration syntax"), std::string::npos);
  EXPECT_NE(message("x[1m1h]").find("bad number or duration syntax"), std::string::npos);
  EXPECT_NE(message("x[5m:1m:1m]").find("unexpected"), std::string::npos);
  EXPECT_NE(message("-x[5m]").find("unary expression only allowed"), std::string::npos);
  EXPECT_NE(message("round(x, 1, 2)").find("expected at most 2 argument(s)"), std::string::npos);
  EXPECT_NE(message("label_join(x)").find("expected at least 3 argument(s)"), std::string::npos);
  EXPECT_NE(message("topk(x, y)").find("expected type scalar in aggregation parameter"),
            std::string::npos);
  EXPECT_NE(message(R"("a" + 1)").find("binary expression must contain only"), std::string::npos);
}

TEST(Parser, NestingIsBounded) {
  std::string deep(1000, '(');
  deep += "1";
  deep += std::string(1000, ')');
  EXPECT_NE(std::string(parse_error(deep).what()).find("nested too deeply"), std::string::npos);
  std::string fine(100, '(');
  fine += "1";
  fine += std::string(100, ')');
  EXPECT_EQ(parse(fine)->type(), ValueType::scalar);
}

TEST(Parser, FeaturesOutsideTheSubsetAreNamed) {
  auto message = [](std::string_view q) { return std::string(parse_error(q).what()); };
  EXPECT_NE(message("histogram_quantile(0.9, x)").find("\"histogram_quantile\" is not supported"),
            std::string::npos);
  EXPECT_NE(message("holt_winters(x[5m], 0.5, 0.5)").find("\"holt_winters\" is not supported"),
            std::string::npos);
  EXPECT_NE(message("stdvar(x)").find("\"stdvar\" is not supported"), std::string::npos);
  EXPECT_NE(message("x atan2 y").find("\"atan2\" is not supported"), std::string::npos);
  EXPECT_NE(message("no_such_fn(x)").find("unknown function with name \"no_such_fn\""),
            std::string::npos);
}

}  // namespace
}  // namespace metrics::query
