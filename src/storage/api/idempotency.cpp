#include "metrics/storage/idempotency.hpp"

#include <algorithm>
#include <cstring>

#include "metrics/core/signature.hpp"

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

std::size_t KeyStore::DigestHash::operator()(const KeyDigest& d) const noexcept {
  // The digest is already uniform: its first bytes are a hash.
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);
  return h;
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
  auto [it, inserted] = map_.try_emplace(guard.key, Entry{guard.fingerprint, now_ms, true});
  if (inserted) {
    ++in_flight_;
    return Status::fresh;
  }
  Entry& e = it->second;
  if (e.in_flight) {
    ++counts_.conflicts;
    return Status::in_flight;
  }
  if (now_ms - e.received_ms > opt_.window.count()) {
    // Out of the window: a new write (its order entry is stale now).
    ++counts_.expired;
    --applied_;
    ++in_flight_;
    e = Entry{guard.fingerprint, now_ms, true};
    return Status::fresh;
  }
  if (e.fingerprint != guard.fingerprint) {
    ++counts_.conflicts;
    return Status::mismatch;
  }
  ++counts_.replayed;
  return Status::replay;
}

void KeyStore::insert_locked(const KeyDigest& key, const KeyDigest& fp, std::int64_t received_ms) {
  auto [it, inserted] = map_.try_emplace(key, Entry{fp, received_ms, false});
  if (!inserted) {
    Entry& e = it->second;
    if (!e.in_flight && e.received_ms == received_ms && e.fingerprint == fp) return;
    if (e.in_flight) {
      --in_flight_;
    } else {
      --applied_;
    }
    e = Entry{fp, received_ms, false};
  }
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
  auto it = map_.find(guard.key);
  if (it == map_.end() || !it->second.in_flight) return;
  map_.erase(it);
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
    auto it = map_.find(front.key);
    const bool stale =
        it == map_.end() || it->second.in_flight || it->second.received_ms != front.received_ms;
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
    map_.erase(it);
    --applied_;
    order_.pop_front();
  }
}

std::vector<KeyRecord> KeyStore::list(std::int64_t now_ms) const {
  const std::lock_guard lock(mu_);
  std::vector<KeyRecord> out;
  out.reserve(applied_);
  for (const Order& o : order_) {
    auto it = map_.find(o.key);
    if (it == map_.end() || it->second.in_flight || it->second.received_ms != o.received_ms) {
      continue;
    }
    if (now_ms != INT64_MIN && now_ms - o.received_ms > opt_.window.count()) continue;
    out.push_back(KeyRecord{Guard{o.key, it->second.fingerprint}, o.received_ms});
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
