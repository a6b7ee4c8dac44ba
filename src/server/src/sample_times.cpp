#include "metrics/server/sample_times.hpp"

#include <utility>

#include "metrics/core/errors.hpp"

namespace metrics::server {

SampleTimes::Claim::Claim(Claim&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), priors_(std::move(other.priors_)) {}

SampleTimes::Claim& SampleTimes::Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->give_back(priors_);
    owner_ = std::exchange(other.owner_, nullptr);
    priors_ = std::move(other.priors_);
  }
  return *this;
}

SampleTimes::Claim::~Claim() {
  if (owner_ != nullptr) owner_->give_back(priors_);
}

void SampleTimes::Claim::keep() noexcept {
  owner_ = nullptr;
  priors_.clear();
}

SampleTimes::Claim SampleTimes::claim(std::span<const Item> items, const HistoryLast& history_last,
                                      const Describe& describe) {
  Claim out;
  out.priors_.reserve(items.size());
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    std::optional<std::int64_t> newest;
    if (const auto it = last_.find(item.ref); it != last_.end()) {
      newest = it->second;
    } else if (history_last) {
      newest = history_last(item.ref);
    }
    if (newest && item.first_ms <= *newest) {
      const std::string what =
          item.first_ms == *newest
              ? "duplicate sample for timestamp " + std::to_string(*newest)
              : "out of order sample: timestamp " + std::to_string(item.first_ms) +
                    " is older than the newest stored, " + std::to_string(*newest);
      throw core::InvalidInput((describe ? describe(i) : "series " + std::to_string(i)) + ": " +
                               what + "; nothing of the request was stored");
    }
  }
  // Checked in full; now recorded (emplace may throw: undone by `out`).
  out.owner_ = this;
  for (const Item& item : items) {
    auto [it, inserted] = last_.try_emplace(item.ref, item.last_ms);
    Claim::Prior prior{item.ref, std::nullopt, item.last_ms};
    if (!inserted) {
      prior.before = it->second;
      it->second = item.last_ms;
    }
    out.priors_.push_back(prior);
  }
  return out;
}

void SampleTimes::give_back(std::span<const Claim::Prior> priors) noexcept {
  std::lock_guard lock(mu_);
  // Newest first, so that a series claimed twice in one request ends where it began.
  for (auto p = priors.rbegin(); p != priors.rend(); ++p) {
    const auto it = last_.find(p->ref);
    // A later request moved it on: its time stands.
    if (it == last_.end() || it->second != p->set) continue;
    if (p->before) {
      it->second = *p->before;
    } else {
      last_.erase(it);
    }
  }
}

std::optional<std::int64_t> SampleTimes::last(std::uint64_t ref) const {
  std::lock_guard lock(mu_);
  const auto it = last_.find(ref);
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

std::size_t SampleTimes::size() const {
  std::lock_guard lock(mu_);
  return last_.size();
}

}  // namespace metrics::server
