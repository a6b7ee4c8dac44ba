// The Authorization header a client sends to a server (or a proxy in front
// of it) that wants credentials: HTTP Basic (RFC 7617) or a bearer token
// (RFC 6750). Used by the agent and the load generator.
//
//   core::authorization_value("alice:secret", "")  // "Basic YWxpY2U6c2VjcmV0"
//   core::authorization_value("", "tok")           // "Bearer tok"
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace metrics::core {

// Standard base64 with padding.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

// `basic` is "user:password" (the password may contain ':'); a non-empty
// `bearer` wins over it. Empty when both are empty.
[[nodiscard]] std::string authorization_value(std::string_view basic, std::string_view bearer);

// Throws std::invalid_argument when `basic` is set but not "user:password"
// with a non-empty user, or when a value has a control character.
void check_credentials(std::string_view basic, std::string_view bearer);

}  // namespace metrics::core
