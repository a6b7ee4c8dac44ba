// What the agent sends, as bytes and URLs: the server's address turned into
// URLs, the gzip'd batch body, and the single-metric forms of the json and
// text sending modes. The sending itself is metrics::outbound's.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "metrics/core/labels.hpp"
#include "metrics/core/metric.hpp"

namespace metrics::agent::detail {

// The server's base URL ("http://host:port" or the given http(s):// URL
// without trailing '/') for "host:port" or an http(s):// URL; nullopt with
// *error set when the address cannot be used.
[[nodiscard]] std::optional<std::string> base_url(std::string_view address,
                                                  std::string* error = nullptr);
// base_url + "/updates/".
[[nodiscard]] std::optional<std::string> updates_url(std::string_view address,
                                                     std::string* error = nullptr);

// The request body as sent: the envelope {"labels":{identity},"metrics":[...]}
// (each metric with its own labels, which add to the envelope's), gzip'd.
// With an idempotency key the envelope opens with "idempotency_key", so the
// signature covers it (API.md, "Exactly-once writes").
[[nodiscard]] std::string encode_body(const core::Labels& identity,
                                      std::span<const core::Update> batch,
                                      std::string_view idempotency_key = {});

// A fresh idempotency key: `prefix` (random per agent) and a sequence number,
// "<prefix>-<seq>", at most 128 bytes for a prefix of at most 100.
[[nodiscard]] std::string idempotency_key(std::string_view prefix, std::uint64_t seq);
// 32 hex digits from the system's random source, so that the keys of two
// agents (or of one agent before and after a restart) never meet.
[[nodiscard]] std::string random_key_prefix();

// The single-metric request bodies and paths of the json and text modes:
// the metric's JSON object with `identity` merged under its own labels,
// gzip'd; and "/update/{type}/{name}/{value}" with the name percent-encoded
// (text mode cannot carry labels: it writes the classic value and the
// unlabelled series only).
[[nodiscard]] std::string encode_metric_body(const core::Labels& identity,
                                             const core::Update& metric);
[[nodiscard]] std::string text_update_path(const core::Update& metric);

}  // namespace metrics::agent::detail
