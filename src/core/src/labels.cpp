#include "metrics/core/labels.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>

#include "detail/utf8.hpp"
#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

constexpr char kSeparator = '\xFF';

bool is_name_start(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) noexcept {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

bool valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = detail::utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::size_t hash_encoded(std::string_view encoded) noexcept {
  return encoded.empty() ? 0 : std::hash<std::string_view>{}(encoded);
}

// Label names are shown in errors; an invalid one is shown escaped enough
// to stay on one line and short.
std::string quoted(std::string_view name) {
  std::string out = "\"";
  for (char c : name.substr(0, 64)) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(b < 0x20 || b == 0x7F || b >= 0x80 ? '?' : c);
  }
  if (name.size() > 64) out.append("...");
  out.push_back('"');
  return out;
}

}  // namespace

std::optional<std::string> validate_label_name(std::string_view name) {
  if (name.empty()) return std::string("label name is empty");
  if (name.size() > kMaxLabelNameLength) {
    return "label " + quoted(name) + ": name is longer than 128 bytes";
  }
  if (!is_name_start(name.front()) || !std::all_of(name.begin(), name.end(), is_name_char)) {
    return "label " + quoted(name) + ": name must match [a-zA-Z_][a-zA-Z0-9_]*";
  }
  if (name.starts_with("__")) {
    return "label " + quoted(name) + ": names starting with \"__\" are reserved";
  }
  return std::nullopt;
}

std::optional<std::string> validate_label_value(std::string_view name, std::string_view value) {
  if (value.size() > kMaxLabelValueLength) {
    return "label " + quoted(name) + ": value is longer than 1024 bytes";
  }
  if (!valid_utf8(value)) return "label " + quoted(name) + ": value is not valid UTF-8";
  return std::nullopt;
}

void Labels::const_iterator::load() noexcept {
  if (pos_ >= encoded_.size()) {
    pos_ = encoded_.size();
    next_ = pos_;
    current_ = {};
    return;
  }
  const std::size_t name_end = encoded_.find(kSeparator, pos_);
  const std::size_t value_end = encoded_.find(kSeparator, name_end + 1);
  current_.name = encoded_.substr(pos_, name_end - pos_);
  current_.value = encoded_.substr(name_end + 1, value_end - name_end - 1);
  next_ = value_end + 1;
}

Labels Labels::from_sorted(std::span<const LabelView> sorted) {
  Labels out;
  if (sorted.empty()) return out;
  std::size_t bytes = 0;
  for (const LabelView& l : sorted)
    bytes += l.name.size() + l.value.size() + 2;
  auto encoded = std::make_shared<std::string>();
  encoded->reserve(bytes);
  for (const LabelView& l : sorted) {
    encoded->append(l.name);
    encoded->push_back(kSeparator);
    encoded->append(l.value);
    encoded->push_back(kSeparator);
  }
  out.hash_ = hash_encoded(*encoded);
  out.rep_ = std::move(encoded);
  return out;
}

Labels Labels::make(std::vector<Label> labels) {
  std::vector<LabelView> views;
  views.reserve(labels.size());
  for (const Label& l : labels) {
    if (auto problem = validate_label_name(l.name)) throw InvalidInput(*problem);
    if (auto problem = validate_label_value(l.name, l.value)) throw InvalidInput(*problem);
    views.push_back({l.name, l.value});
  }
  std::sort(views.begin(), views.end(),
            [](const LabelView& a, const LabelView& b) { return a.name < b.name; });
  for (std::size_t i = 1; i < views.size(); ++i) {
    if (views[i].name == views[i - 1].name) {
      throw InvalidInput("label " + quoted(views[i].name) + " is given twice");
    }
  }
  std::erase_if(views, [](const LabelView& l) { return l.value.empty(); });
  if (views.size() > kMaxLabels) {
    throw InvalidInput("too many labels: " + std::to_string(views.size()) + " (at most " +
                       std::to_string(kMaxLabels) + ")");
  }
  return from_sorted(views);
}

Labels Labels::merge(const Labels& base, std::span<const Label> own) {
  if (own.empty()) return base;
  std::vector<LabelView> views;
  views.reserve(own.size());
  for (const Label& l : own)
    views.push_back({l.name, l.value});
  std::sort(views.begin(), views.end(),
            [](const LabelView& a, const LabelView& b) { return a.name < b.name; });
  std::vector<LabelView> merged;
  merged.reserve(views.size() + 8);
  auto b = base.begin();
  const auto b_end = base.end();
  std::size_t o = 0;
  while (b != b_end || o < views.size()) {
    if (o == views.size() || (b != b_end && (*b).name < views[o].name)) {
      merged.push_back(*b);
      ++b;
      continue;
    }
    if (b != b_end && (*b).name == views[o].name) ++b;
    if (!views[o].value.empty()) merged.push_back(views[o]);
    ++o;
  }
  if (merged.size() > kMaxLabels) {
    throw InvalidInput("too many labels: " + std::to_string(merged.size()) + " (at most " +
                       std::to_string(kMaxLabels) + ")");
  }
  return from_sorted(merged);
}

std::optional<Labels> Labels::from_encoded(std::string_view encoded) {
  std::vector<LabelView> views;
  std::size_t pos = 0;
  while (pos < encoded.size()) {
    const std::size_t name_end = encoded.find(kSeparator, pos);
    if (name_end == std::string_view::npos) return std::nullopt;
    const std::size_t value_end = encoded.find(kSeparator, name_end + 1);
    if (value_end == std::string_view::npos) return std::nullopt;
    const LabelView l{encoded.substr(pos, name_end - pos),
                      encoded.substr(name_end + 1, value_end - name_end - 1)};
    if (validate_label_name(l.name) || validate_label_value(l.name, l.value) || l.value.empty()) {
      return std::nullopt;
    }
    if (!views.empty() && !(views.back().name < l.name)) return std::nullopt;
    views.push_back(l);
    pos = value_end + 1;
  }
  if (views.size() > kMaxLabels) return std::nullopt;
  return from_sorted(views);
}

std::size_t Labels::size() const noexcept {
  const std::string_view e = encoded();
  return static_cast<std::size_t>(std::count(e.begin(), e.end(), kSeparator)) / 2;
}

std::optional<std::string_view> Labels::get(std::string_view name) const noexcept {
  for (LabelView l : *this) {
    if (l.name == name) return l.value;
    if (l.name > name) break;
  }
  return std::nullopt;
}

std::string Labels::to_string() const {
  std::string out = "{";
  bool first = true;
  for (LabelView l : *this) {
    if (!first) out.push_back(',');
    first = false;
    out.append(l.name);
    out.append("=\"");
    for (char c : l.value) {
      if (c == '\\') {
        out.append("\\\\");
      } else if (c == '"') {
        out.append("\\\"");
      } else if (c == '\n') {
        out.append("\\n");
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

std::size_t Labels::heap_bytes() const noexcept {
  if (!rep_) return 0;
  // make_shared's one block (control block and string), plus the string's
  // own buffer beyond libstdc++'s 15 inline bytes.
  constexpr std::size_t kBlock = 16 + sizeof(std::string);
  return kBlock + (rep_->capacity() > 15 ? rep_->capacity() + 1 : 0);
}

// On the encodings, without decoding: up to the first byte where they differ
// both are in the same field of the same pair. A separator there ends the
// shorter field, a prefix of the other (it sorts first, though 0xFF is the
// largest byte); else the bytes order the fields as string_view would
// (unsigned). An encoding that ends first holds fewer pairs.
std::strong_ordering operator<=>(const Labels& a, const Labels& b) noexcept {
  if (a.rep_ == b.rep_) return std::strong_ordering::equal;
  const std::string_view x = a.encoded();
  const std::string_view y = b.encoded();
  const std::size_t common = std::min(x.size(), y.size());
  std::size_t n = common;
  std::size_t p = 0;
  // Eight bytes at a time, then the first differing byte of the word.
  for (; p + 8 <= n; p += 8) {
    std::uint64_t wx = 0;
    std::uint64_t wy = 0;
    std::memcpy(&wx, x.data() + p, 8);
    std::memcpy(&wy, y.data() + p, 8);
    if (wx != wy) {
      if constexpr (std::endian::native == std::endian::little) {
        p += static_cast<std::size_t>(std::countr_zero(wx ^ wy)) / 8;
        n = p + 1;
      }
      break;
    }
  }
  while (p < n && x[p] == y[p])
    ++p;
  if (p == common) return x.size() <=> y.size();
  const auto cx = static_cast<unsigned char>(x[p]);
  const auto cy = static_cast<unsigned char>(y[p]);
  constexpr auto kSep = static_cast<unsigned char>(kSeparator);
  if (cx == kSep) return std::strong_ordering::less;
  if (cy == kSep) return std::strong_ordering::greater;
  return cx <=> cy;
}

}  // namespace metrics::core
