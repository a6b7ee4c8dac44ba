#include "detail/pg_failure.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "detail/pg.hpp"

namespace metrics::storage::detail::pg {
namespace {

bool contains_nocase(std::string_view text, std::string_view word) {
  return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}

// What the server (auth.c, postinit.c) and libpq (fe-auth.c) say when the
// credentials are refused; the server's messages are in its lc_messages,
// English by default.
constexpr std::array kAuthenticationMessages{
    std::string_view{"authentication failed for user"},  // password, md5, scram, peer, ident...
    std::string_view{"no pg_hba.conf entry for"},
    std::string_view{"pg_hba.conf rejects connection"},
    std::string_view{"no password supplied"},  // fe_sendauth
    std::string_view{"is not permitted to log in"},
};

}  // namespace

Failure classify(std::string_view sqlstate, std::string_view message, bool connection_lost) {
  if (sqlstate.starts_with("28")) return Failure::authentication;
  if (sqlstate.empty() && connection_lost) {
    for (const auto word : kAuthenticationMessages) {
      if (contains_nocase(message, word)) return Failure::authentication;
    }
    // FATAL:  role "x" does not exist (28000), during the connection only.
    if (contains_nocase(message, "role \"") && contains_nocase(message, "\" does not exist")) {
      return Failure::authentication;
    }
  }
  if (connection_lost || sqlstate.starts_with("08") || sqlstate.starts_with("57P")) {
    return Failure::unreachable;
  }
  return Failure::statement;
}

bool unreachable(const Error& e) {
  return classify(e.sqlstate(), e.what(), e.connection_lost()) != Failure::statement;
}

std::string reason(const Error& e) {
  if (e.authentication_failed()) {
    return "PostgreSQL authentication failed for user \"" + e.user() + "\"";
  }
  return "PostgreSQL: " + one_line(e.what());
}

std::string one_line(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  bool at_break = false;
  for (const char c : message) {
    if (c == '\n' || c == '\r') {
      at_break = true;
      continue;
    }
    if (at_break && !out.empty()) out += "; ";
    at_break = false;
    out += c;
  }
  return out;
}

}  // namespace metrics::storage::detail::pg
