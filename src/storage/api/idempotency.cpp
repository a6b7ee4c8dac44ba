#include "metrics/storage/idempotency.hpp"

#include <algorithm>
#include <cstring>

#include "metrics/core/signature.hpp"

// Header-only: the hash is compiled in, nothing more is linked.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace metrics::storage {
namespace {

KeyDigest cut(const std::array<unsigned char, 32>& full) {
  KeyDigest out{};
  std::memcpy(out.data(), full.data(), out.size());
  return out;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Guard Guard::of(std::string_view key, std::string_view body) {
  // The canonical form (big-endian high then low half): the same bytes on
  // every machine, since they are written to disk and to the database.
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits(body.data(), body.size()));
  Guard g{.key = cut(core::sha256(key))};
  static_assert(sizeof canonical.digest == sizeof g.fingerprint);
  std::memcpy(g.fingerprint.data(), canonical.digest, g.fingerprint.size());
  return g;
}

Guard Guard::legacy_of(std::string_view key, std::string_view body) {
  return Guard{.key = cut(core::sha256(key)), .fingerprint = cut(core::sha256(body))};
}

std::string to_hex(const KeyDigest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(d.size() * 2, '\0');
  for (std::size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kHex[d[i] >> 4U];
    out[2 * i + 1] = kHex[d[i] & 0xFU];
  }
  return out;
}

bool from_hex(std::string_view text, KeyDigest& out) noexcept {
  if (text.size() != out.size() * 2) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>((hi << 4) | lo);
  }
  return true;
}

KeyStore::KeyStore(KeyStoreOptions options) : opt_(options) {}

void KeyStore::configure(KeyStoreOptions options) {
  const std::lock_guard lock(mu_);
  opt_ = options;
  trim_locked(INT64_MIN);
}

KeyStoreOptions KeyStore::options() const {
  const std::lock_guard lock(mu_);
  return opt_;
}

KeyStore::Status KeyStore::begin(const Guard& guard, std::int64_t now_ms) {
  const std::lock_guard lock(mu_);
  auto [e, inserted] = map_.try_emplace(guard.key);
  if (!inserted && e->in_flight) {
    ++counts_.conflicts;
    return Status::in_flight;
  }
  if (inserted || now_ms - e->received_ms > opt_.window.count()) {
    if (!inserted) {
      // Out of the window: a new write (its order entry is stale now).
      ++counts_.expired;
      --applied_;
    }
    ++in_flight_;
    e->fingerprint = guard.fingerprint;
    e->received_ms = now_ms;
    e->in_flight = true;
    return Status::fresh;
  }
  if (e->fingerprint != guard.fingerprint) {
    ++counts_.conflicts;
    return Status::mismatch;
  }
  ++counts_.replayed;
  return Status::replay;
}

void KeyStore::insert_locked(const KeyDigest& key, const KeyDigest& fp, std::int64_t received_ms) {
  auto [e, inserted] = map_.try_emplace(key);
  if (!inserted) {
    if (!e->in_flight && e->received_ms == received_ms && e->fingerprint == fp) return;
    if (e->in_flight) {
      --in_flight_;
    } else {
      --applied_;
    }
  }
  e->fingerprint = fp;
  e->received_ms = received_ms;
  e->in_flight = false;
  ++applied_;
  order_.push_back(Order{key, received_ms});
}

void KeyStore::commit(const Guard& guard, std::int64_t received_ms) {
  const std::lock_guard lock(mu_);
  insert_locked(guard.key, guard.fingerprint, received_ms);
  trim_locked(received_ms);
}

void KeyStore::abort(const Guard& guard) {
  const std::lock_guard lock(mu_);
  auto* e = map_.find(guard.key);
  if (e == nullptr || !e->in_flight) return;
  map_.erase(e);
  --in_flight_;
}

void KeyStore::load(std::span<const KeyRecord> records) {
  const std::lock_guard lock(mu_);
  for (const auto& r : records)
    insert_locked(r.guard.key, r.guard.fingerprint, r.received_ms);
  trim_locked(INT64_MIN);
}

void KeyStore::trim_locked(std::int64_t now_ms) {
  while (!order_.empty()) {
    const Order& front = order_.front();
    auto* e = map_.find(front.key);
    const bool stale = e == nullptr || e->in_flight || e->received_ms != front.received_ms;
    if (stale) {
      order_.pop_front();
      continue;
    }
    if (applied_ > opt_.max_keys) {
      ++counts_.evicted;
    } else if (now_ms != INT64_MIN && now_ms - front.received_ms > opt_.window.count()) {
      ++counts_.expired;
    } else {
      break;
    }
    map_.erase(e);
    --applied_;
    order_.pop_front();
  }
}

std::vector<KeyRecord> KeyStore::list(std::int64_t now_ms) const {
  const std::lock_guard lock(mu_);
  std::vector<KeyRecord> out;
  out.reserve(applied_);
  for (const Order& o : order_) {
    const auto* e = map_.find(o.key);
    if (e == nullptr || e->in_flight || e->received_ms != o.received_ms) continue;
    if (now_ms != INT64_MIN && now_ms - o.received_ms > opt_.window.count()) continue;
    out.push_back(KeyRecord{Guard{o.key, e->fingerprint}, o.received_ms});
  }
  return out;
}

KeyStoreStats KeyStore::stats() const {
  const std::lock_guard lock(mu_);
  KeyStoreStats s = counts_;
  s.keys = applied_;
  s.in_flight = in_flight_;
  return s;
}

}  // namespace metrics::storage
