// Labels: the name=value pairs that, with a type and a name, identify a
// series (API.md Part 2, "Series: instances and labels").
//
// A Labels value is always valid, sorted by name and free of repeats and of
// empty values (an empty value means "absent"). It keeps one canonical
// encoding (every pair as `name 0xFF value 0xFF`; 0xFF never occurs in
// UTF-8, so the encoding is unambiguous) and its hash, both computed once:
// equal label sets have equal encodings, so equality and hashing are one
// comparison and one load.
//
//   auto labels = core::Labels::make({{"job", "api"}, {"instance", "h:1"}});  // throws
//   InvalidInput labels.get("job");                   // "api" labels.to_string(); //
//   {instance="h:1",job="api"} for (core::LabelView l : labels) { ... }
//
// A plain value type: safe to share between threads for reading. Copies
// share one immutable, reference-counted encoding (a copy is a pointer copy
// and an atomic increment, no allocation): every update decoded from one
// envelope, its answer and its stored series carry the envelope's labels.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace metrics::core {

inline constexpr std::size_t kMaxLabelNameLength = 128;
inline constexpr std::size_t kMaxLabelValueLength = 1024;
inline constexpr std::size_t kMaxLabels = 32;

// One label as it arrives (owning).
struct Label {
  std::string name;
  std::string value;
  friend bool operator==(const Label&, const Label&) = default;
};

// One label of a Labels value (views into its encoding).
struct LabelView {
  std::string_view name;
  std::string_view value;
  friend bool operator==(const LabelView&, const LabelView&) = default;
};

// A client-facing message when the label name is invalid (does not match
// [a-zA-Z_][a-zA-Z0-9_]*, longer than 128 bytes, or reserved: starts with
// "__"), nullopt when it is fine. The message names the label.
[[nodiscard]] std::optional<std::string> validate_label_name(std::string_view name);
// The same for a value: valid UTF-8, at most 1024 bytes.
[[nodiscard]] std::optional<std::string> validate_label_value(std::string_view name,
                                                              std::string_view value);

class Labels {
 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = LabelView;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = LabelView;

    const_iterator() = default;
    [[nodiscard]] LabelView operator*() const noexcept { return current_; }
    const_iterator& operator++() noexcept {
      pos_ = next_;
      load();
      return *this;
    }
    const_iterator operator++(int) noexcept {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept {
      return a.pos_ == b.pos_;
    }

   private:
    friend class Labels;
    const_iterator(std::string_view encoded, std::size_t pos) noexcept
        : encoded_(encoded), pos_(pos) {
      load();
    }
    void load() noexcept;

    std::string_view encoded_;
    std::size_t pos_ = 0;
    std::size_t next_ = 0;
    LabelView current_;
  };

  Labels() = default;

  // Validates every label, drops the ones with an empty value and sorts the
  // rest. Throws InvalidInput naming the label on an invalid name or value,
  // a name given twice, or more than kMaxLabels labels.
  [[nodiscard]] static Labels make(std::vector<Label> labels);

  // `base` with `own` applied on top: a label of `own` replaces the one of
  // the same name in `base`, and one with an empty value removes it. `own`
  // must hold valid labels with distinct names (what make() checks, empty
  // values allowed). Throws InvalidInput when the result has more than
  // kMaxLabels labels.
  [[nodiscard]] static Labels merge(const Labels& base, std::span<const Label> own);

  // Rebuilds labels from encoded(); nullopt when the bytes are not the
  // canonical encoding of valid labels (for files and databases).
  [[nodiscard]] static std::optional<Labels> from_encoded(std::string_view encoded);

  [[nodiscard]] std::string_view encoded() const noexcept {
    // Never a null data(): callers hand it to C APIs (libpq reads a null
    // parameter as SQL NULL).
    return rep_ ? std::string_view(*rep_) : std::string_view("", 0);
  }
  [[nodiscard]] std::size_t hash() const noexcept { return hash_; }
  [[nodiscard]] bool empty() const noexcept { return rep_ == nullptr; }
  // Number of labels (walks the encoding).
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] const_iterator begin() const noexcept { return {encoded(), 0}; }
  [[nodiscard]] const_iterator end() const noexcept { return {encoded(), encoded().size()}; }

  // The value of a label; nullopt when absent.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;

  // Prometheus's text form: {a="1",b="x\"y"} (values escaped as in the
  // exposition format); "{}" when empty.
  [[nodiscard]] std::string to_string() const;

  // Heap bytes held beyond sizeof(Labels) (for memory accounting): the
  // whole shared encoding, however many copies share it.
  [[nodiscard]] std::size_t heap_bytes() const noexcept;

  friend bool operator==(const Labels& a, const Labels& b) noexcept {
    return a.rep_ == b.rep_ || (a.hash_ == b.hash_ && a.encoded() == b.encoded());
  }
  // Pair by pair, names then values, as Prometheus orders label sets.
  friend std::strong_ordering operator<=>(const Labels& a, const Labels& b) noexcept;

 private:
  // Takes sorted, valid, distinct, non-empty labels.
  static Labels from_sorted(std::span<const LabelView> sorted);

  // Null when empty; never an empty string.
  std::shared_ptr<const std::string> rep_;
  std::size_t hash_ = 0;
};

}  // namespace metrics::core
