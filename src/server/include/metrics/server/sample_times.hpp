// The newest sample time of every series that remote write in
// (POST /api/v1/write) has written, so that a request whose samples are not
// newer than what a series already holds is refused (400) before anything
// of it is stored, as Prometheus refuses out-of-order and duplicate
// samples. A series not known here (first write since the start) is
// compared with the newest sample of its history, when there is one.
//
//   auto claim = times.claim(items, history_last, describe);  // throws core::InvalidInput
//   co_await storage...;            // failed: claim's destructor gives the times back
//   claim.keep();
//
// A claim records the request's newest times at once (under one mutex), so
// that two concurrent requests for one series cannot both pass; a request
// that then fails gives them back (unless a later claim moved them on).
//
// Thread-safe: every member may be called from any number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace metrics::server {

class SampleTimes {
 public:
  // One series of a request: its interned id and the times of its oldest
  // and newest sample in the request (already in increasing order).
  struct Item {
    std::uint64_t ref = 0;
    std::int64_t first_ms = 0;
    std::int64_t last_ms = 0;
  };
  // The newest history sample of a series (nullopt: none).
  using HistoryLast = std::function<std::optional<std::int64_t>(std::uint64_t ref)>;
  // "series 3 up{job="a"}" for item i (error messages only).
  using Describe = std::function<std::string(std::size_t i)>;

  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept;
    Claim& operator=(Claim&& other) noexcept;
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    ~Claim();  // gives the times back unless kept
    // The request was stored: its times stand.
    void keep() noexcept;

   private:
    friend class SampleTimes;
    struct Prior {
      std::uint64_t ref = 0;
      std::optional<std::int64_t> before;
      std::int64_t set = 0;
    };
    SampleTimes* owner_ = nullptr;
    std::vector<Prior> priors_;
  };

  // Checks every item (first_ms after the series' newest time), then records
  // each last_ms. Throws core::InvalidInput naming the first bad item
  // ("... out of order sample ..." or "... duplicate sample for timestamp
  // ..."); nothing is recorded then.
  [[nodiscard]] Claim claim(std::span<const Item> items, const HistoryLast& history_last,
                            const Describe& describe);

  // The newest time recorded for ref (tests).
  [[nodiscard]] std::optional<std::int64_t> last(std::uint64_t ref) const;
  [[nodiscard]] std::size_t size() const;

 private:
  void give_back(std::span<const Claim::Prior> priors) noexcept;

  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::int64_t> last_;
};

}  // namespace metrics::server
