// The classification of PostgreSQL failures, without a server.
#include "detail/pg_failure.hpp"

#include <gtest/gtest.h>

#include "detail/pg.hpp"

namespace metrics::storage::detail::pg {
namespace {

// What libpq 15 says when the server refuses a login (connection attempts
// carry no SQLSTATE: only the message tells).
constexpr const char* kWrongPassword =
    "cannot connect to PostgreSQL: connection to server at \"127.0.0.1\", port 5432 failed: "
    "FATAL:  password authentication failed for user \"metrics\"";

TEST(PgFailure, AWrongPasswordIsAnAuthenticationFailure) {
  EXPECT_EQ(classify("", kWrongPassword, true), Failure::authentication);
  EXPECT_EQ(classify("", "FATAL:  no pg_hba.conf entry for host \"10.0.0.1\", user \"u\"", true),
            Failure::authentication);
  EXPECT_EQ(classify("", "FATAL:  Peer authentication failed for user \"u\"", true),
            Failure::authentication);
  EXPECT_EQ(classify("", "fe_sendauth: no password supplied", true), Failure::authentication);
  EXPECT_EQ(classify("", "FATAL:  role \"nobody\" does not exist", true), Failure::authentication);
  EXPECT_EQ(classify("", "FATAL:  role \"ro\" is not permitted to log in", true),
            Failure::authentication);
}

TEST(PgFailure, SqlstateClass28IsAnAuthenticationFailure) {
  EXPECT_EQ(classify("28P01", "anything", false), Failure::authentication);
  EXPECT_EQ(classify("28000", "anything", true), Failure::authentication);
}

TEST(PgFailure, AnOutageIsUnreachableAndAStatementErrorIsNeither) {
  EXPECT_EQ(classify("",
                     "cannot connect to PostgreSQL: connection to server at \"127.0.0.1\", port "
                     "1 failed: Connection refused\n\tIs the server running on that host?",
                     true),
            Failure::unreachable);
  EXPECT_EQ(classify("57P01", "terminating connection due to administrator command", false),
            Failure::unreachable);
  EXPECT_EQ(classify("08006", "connection failure", false), Failure::unreachable);
  EXPECT_EQ(classify("22003", "bigint out of range", false), Failure::statement);
  // The words alone, in a statement's error on a working connection, are not
  // a refused login.
  EXPECT_EQ(classify("P0001", "password authentication failed for user", false),
            Failure::statement);
}

TEST(PgFailure, ErrorsCarryTheVerdictAndAPlainReason) {
  const Error refused(kWrongPassword, "", true, "metrics");
  EXPECT_TRUE(refused.authentication_failed());
  EXPECT_TRUE(unreachable(refused));
  EXPECT_TRUE(refused.transient());  // retried by the probes: the password may be fixed
  EXPECT_EQ(reason(refused), "PostgreSQL authentication failed for user \"metrics\"");

  const Error down("cannot connect to PostgreSQL: connection refused\n\tIs the server running?", "",
                   true, "metrics");
  EXPECT_FALSE(down.authentication_failed());
  EXPECT_TRUE(unreachable(down));
  EXPECT_EQ(reason(down),
            "PostgreSQL: cannot connect to PostgreSQL: connection refused; \tIs the server "
            "running?");

  const Error overflow("bigint out of range", "22003", false);
  EXPECT_FALSE(overflow.authentication_failed());
  EXPECT_FALSE(unreachable(overflow));
}

TEST(PgFailure, OneLineJoinsLines) {
  EXPECT_EQ(one_line("a\nb\r\n\nc\n"), "a; b; c");
  EXPECT_EQ(one_line("plain"), "plain");
}

}  // namespace
}  // namespace metrics::storage::detail::pg
