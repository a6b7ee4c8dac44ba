// The idempotency keys of exactly-once writes (API.md Part 2, "Exactly-once
// writes"): which keys were applied within the window, which are in flight.
//
// A key is held as a 16-byte digest of the client's key (SHA-256, cut), with
// a 16-byte fingerprint of the request body (after decompression, XXH3-128)
// and the
// receive time of the write it guards, so its memory does not depend on the
// key's length (docs/BENCHMARKS.md has the bytes per key). Keys older than
// the window count as absent; past max_keys the oldest are evicted first
// (both counted).
//
//   storage::KeyStore keys({.window = std::chrono::minutes{10}, .max_keys = 1'000'000});
//   auto guard = storage::Guard::of("b3c0…", body);
//   switch (keys.begin(guard, now_ms)) {
//     case KeyStore::Status::fresh:  /* apply, then */ keys.commit(guard, now_ms); break;
//     case KeyStore::Status::replay: /* answer the current values */ break;
//     ...
//   }
//
// Thread-safe (one mutex).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/storage/key_table.hpp"

namespace metrics::storage {

using KeyDigest = detail::Digest16;  // the table's key type

// What a request guarded by a key brings along.
//
// The key's digest is SHA-256 (cut to 16 bytes): a client cannot aim its
// key at another's. The body's fingerprint only tells "the same body" from
// "another body" under one key, so it is XXH3-128 (about 20 times faster
// than SHA-256 on a 3 KB batch): a body forged to collide gets only a replay
// answer for its own key, and nothing is applied. Servers before 2026-12-04
// stored SHA-256 fingerprints; legacy_of() makes that guard, so that a retry
// across an upgrade is still recognised (see the server's apply()).
struct Guard {
  KeyDigest key{};
  KeyDigest fingerprint{};  // of the body after decompression
  // From the client's key and the decompressed body.
  static Guard of(std::string_view key, std::string_view body);
  // The same with the body's fingerprint as earlier servers wrote it
  // (SHA-256, cut): what a key stored by one of them holds.
  static Guard legacy_of(std::string_view key, std::string_view body);
  friend bool operator==(const Guard&, const Guard&) = default;
};

// An applied key, as the storages keep it on disk.
struct KeyRecord {
  Guard guard;
  std::int64_t received_ms = 0;
  friend bool operator==(const KeyRecord&, const KeyRecord&) = default;
};

// Lowercase hex of a digest, and back (nullopt-like false on bad text).
[[nodiscard]] std::string to_hex(const KeyDigest& d);
[[nodiscard]] bool from_hex(std::string_view text, KeyDigest& out) noexcept;

struct KeyStoreOptions {
  // A key applied longer ago than this is a new write.
  std::chrono::milliseconds window{std::chrono::minutes{10}};
  // Most applied keys kept; past it the oldest go first.
  std::size_t max_keys = 1'000'000;
};

struct KeyStoreStats {
  std::size_t keys = 0;         // applied keys held (some may be past the window)
  std::size_t in_flight = 0;    // keys whose first request is not answered yet
  std::uint64_t evicted = 0;    // dropped because max_keys was reached
  std::uint64_t expired = 0;    // dropped because they left the window
  std::uint64_t replayed = 0;   // requests answered as replays
  std::uint64_t conflicts = 0;  // 409 (in flight) and 422 (another body)
};

class KeyStore {
 public:
  enum class Status : std::uint8_t {
    fresh,      // unknown: now in flight; commit() or abort() it
    replay,     // applied within the window with the same body
    mismatch,   // applied within the window with another body (422)
    in_flight,  // its first request is still being applied (409)
  };

  explicit KeyStore(KeyStoreOptions options = {});

  // Sets the bounds; evicts down to max_keys at once.
  void configure(KeyStoreOptions options);
  [[nodiscard]] KeyStoreOptions options() const;

  Status begin(const Guard& guard, std::int64_t now_ms);
  // The guarded write is applied (durably, where the storage is): the key is
  // kept from received_ms on. Also for a key not begun here (a replica's).
  void commit(const Guard& guard, std::int64_t received_ms);
  // The guarded write was not applied: the key is free again.
  void abort(const Guard& guard);

  // Adds keys restored from disk (oldest first); those past max_keys go.
  void load(std::span<const KeyRecord> records);
  // The applied keys, oldest first (for a snapshot); with now_ms, only
  // those still within the window then.
  [[nodiscard]] std::vector<KeyRecord> list(std::int64_t now_ms = INT64_MIN) const;
  [[nodiscard]] KeyStoreStats stats() const;

 private:
  // Oldest first; an entry whose time differs from its map entry is stale
  // (the key was applied again after leaving the window).
  struct Order {
    KeyDigest key;
    std::int64_t received_ms;
  };
  void insert_locked(const KeyDigest& key, const KeyDigest& fp, std::int64_t received_ms);
  void trim_locked(std::int64_t now_ms);

  mutable std::mutex mu_;
  KeyStoreOptions opt_;
  detail::KeyTable map_;
  std::deque<Order> order_;
  std::size_t applied_ = 0;
  std::size_t in_flight_ = 0;
  KeyStoreStats counts_;
};

}  // namespace metrics::storage
