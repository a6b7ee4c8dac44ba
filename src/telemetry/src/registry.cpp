#include "metrics/telemetry/registry.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "metrics/exposition/text_format.hpp"

namespace metrics::telemetry {

std::size_t this_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

std::string_view to_string(Type type) noexcept {
  switch (type) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      return "histogram";
  }
  return "untyped";
}

std::uint64_t Counter::value() const noexcept {
  std::uint64_t sum = 0;
  for (const Cell& c : cells_)
    sum += c.v.load(std::memory_order_relaxed);
  return sum;
}

// ---- Histogram

Histogram::Histogram(std::span<const double> bounds) : bounds_(bounds.begin(), bounds.end()) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
  const std::size_t words = bounds_.size() + 2;  // the sum, the buckets, +Inf
  lines_per_shard_ = (words + 7) / 8;
  lines_ = std::make_unique<Line[]>(lines_per_shard_ * kShards);
}

std::atomic<std::uint64_t>& Histogram::word(std::size_t shard, std::size_t i) const noexcept {
  return lines_[shard * lines_per_shard_ + i / 8].w[i % 8];
}

void Histogram::observe(double v) noexcept {
  std::size_t bucket = 0;
  const std::size_t n = bounds_.size();
  while (bucket < n && !(v <= bounds_[bucket]))
    ++bucket;
  const std::size_t shard = this_shard();
  word(shard, 1 + bucket).fetch_add(1, std::memory_order_relaxed);
  // The shard is this thread's (few threads share one): the loop rarely
  // goes round twice.
  auto& sum = word(shard, 0);
  std::uint64_t old = sum.load(std::memory_order_relaxed);
  while (!sum.compare_exchange_weak(old,
                                    std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v),
                                    std::memory_order_relaxed)) {
  }
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  s.buckets.assign(bounds_.size() + 1, 0);
  for (std::size_t shard = 0; shard < kShards; ++shard) {
    s.sum += std::bit_cast<double>(word(shard, 0).load(std::memory_order_relaxed));
    for (std::size_t b = 0; b < s.buckets.size(); ++b)
      s.buckets[b] += word(shard, 1 + b).load(std::memory_order_relaxed);
  }
  std::uint64_t running = 0;
  for (auto& b : s.buckets) {
    running += b;
    b = running;
  }
  s.count = running;
  return s;
}

std::span<const double> latency_buckets() noexcept {
  static constexpr std::array<double, 16> kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                   1,      2.5,     5,      10};
  return kBuckets;
}

// ---- Writer

namespace {

void append_labels(std::string& out, std::span<const Label> labels, const Label* extra) {
  bool first = true;
  auto one = [&](const Label& l) {
    if (l.second.empty()) return;  // an empty value is an absent label
    out.push_back(first ? '{' : ',');
    first = false;
    exposition::append_label_name(out, l.first);
    out += "=\"";
    exposition::append_label_value(out, l.second);
    out.push_back('"');
  };
  for (const Label& l : labels)
    one(l);
  if (extra != nullptr) one(*extra);
  if (!first) out.push_back('}');
}

void append_integer(std::string& out, std::uint64_t v) {
  std::array<char, 24> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

// A counter's value: an integer when it is one (up to 2^63), else as Go
// prints a float.
void append_count(std::string& out, double v) {
  if (v >= 0 && v < 9.2e18 && std::floor(v) == v) {
    append_integer(out, static_cast<std::uint64_t>(v));
  } else {
    exposition::append_value(out, v);
  }
}

}  // namespace

void Writer::family(std::string_view name, Type type, std::string_view help) {
  Chunk& c = chunks_.emplace_back();
  c.name = std::string(name);
  c.type = type;
  if (!help.empty()) {
    c.text += "# HELP ";
    c.text += name;
    c.text.push_back(' ');
    for (const char ch : help) {
      if (ch == '\\') {
        c.text += "\\\\";
      } else if (ch == '\n') {
        c.text += "\\n";
      } else {
        c.text.push_back(ch);
      }
    }
    c.text.push_back('\n');
  }
  c.text += "# TYPE ";
  c.text += name;
  c.text.push_back(' ');
  c.text += to_string(type);
  c.text.push_back('\n');
  c.header = c.text.size();
}

void Writer::sample(std::span<const Label> labels, double value) {
  if (chunks_.empty()) return;
  Chunk& c = chunks_.back();
  c.text += c.name;
  append_labels(c.text, labels, nullptr);
  c.text.push_back(' ');
  if (c.type == Type::counter) {
    append_count(c.text, value);
  } else {
    exposition::append_value(c.text, value);
  }
  c.text.push_back('\n');
}

void Writer::sample_integer(std::span<const Label> labels, std::uint64_t value) {
  if (chunks_.empty()) return;
  Chunk& c = chunks_.back();
  c.text += c.name;
  append_labels(c.text, labels, nullptr);
  c.text.push_back(' ');
  append_integer(c.text, value);
  c.text.push_back('\n');
}

void Writer::histogram(std::span<const Label> labels, const HistogramSnapshot& h) {
  if (chunks_.empty()) return;
  Chunk& c = chunks_.back();
  std::string le;
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    le.clear();
    if (i < h.bounds.size()) {
      exposition::append_value(le, h.bounds[i]);
    } else {
      le = "+Inf";
    }
    const Label extra{"le", le};
    c.text += c.name;
    c.text += "_bucket";
    append_labels(c.text, labels, &extra);
    c.text.push_back(' ');
    append_integer(c.text, h.buckets[i]);
    c.text.push_back('\n');
  }
  c.text += c.name;
  c.text += "_sum";
  append_labels(c.text, labels, nullptr);
  c.text.push_back(' ');
  exposition::append_value(c.text, h.sum);
  c.text.push_back('\n');
  c.text += c.name;
  c.text += "_count";
  append_labels(c.text, labels, nullptr);
  c.text.push_back(' ');
  append_integer(c.text, h.count);
  c.text.push_back('\n');
}

// ---- Family

template <class M>
M& Family<M>::with(std::span<const std::string_view> values) {
  std::vector<std::string> key(labels_.size());
  for (std::size_t i = 0; i < key.size() && i < values.size(); ++i)
    key[i] = std::string(values[i]);
  const std::lock_guard lock(mu_);
  auto& slot = children_[std::move(key)];
  if (!slot) {
    if constexpr (std::is_same_v<M, Histogram>) {
      slot = std::make_unique<M>(bounds_);
    } else {
      slot = std::make_unique<M>();
    }
  }
  return *slot;
}

template <class M>
void Family<M>::render(Writer& w) const {
  Type type = Type::gauge;
  if constexpr (std::is_same_v<M, Counter>) type = Type::counter;
  if constexpr (std::is_same_v<M, Histogram>) type = Type::histogram;
  w.family(name_, type, help_);
  std::vector<Label> labels(labels_.size());
  const std::lock_guard lock(mu_);
  for (const auto& [values, child] : children_) {
    for (std::size_t i = 0; i < labels.size(); ++i)
      labels[i] = {labels_[i], values[i]};
    if constexpr (std::is_same_v<M, Counter>) {
      w.sample_integer(labels, child->value());
    } else if constexpr (std::is_same_v<M, Gauge>) {
      w.sample(labels, child->value());
    } else {
      w.histogram(labels, child->snapshot());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registration

struct Registration::State {
  std::mutex mu;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, Registry::Collect> collectors;
};

Registration::Registration(Registration&& other) noexcept
    : state_(std::move(other.state_)), id_(std::exchange(other.id_, 0)) {}

Registration& Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    reset();
    state_ = std::move(other.state_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

Registration::~Registration() {
  reset();
}

void Registration::reset() noexcept {
  if (state_) {
    const std::lock_guard lock(state_->mu);
    state_->collectors.erase(id_);
  }
  state_.reset();
  id_ = 0;
}

// ---- Registry

Registry::Registry() : collectors_(std::make_shared<Registration::State>()) {}
Registry::~Registry() = default;

template <class M>
Family<M>& Registry::family(std::vector<std::unique_ptr<Family<M>>>& list, std::string_view name,
                            std::string_view help, std::vector<std::string> labels,
                            std::span<const double> bounds) {
  const std::lock_guard lock(mu_);
  for (const auto& f : list) {
    if (f->name() == name) return *f;
  }
  list.push_back(std::unique_ptr<Family<M>>(
      new Family<M>(std::string(name), std::string(help), std::move(labels),
                    std::vector<double>(bounds.begin(), bounds.end()))));
  return *list.back();
}

CounterFamily& Registry::counter(std::string_view name, std::string_view help,
                                 std::vector<std::string> label_names) {
  return family(counters_, name, help, std::move(label_names), {});
}

GaugeFamily& Registry::gauge(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names) {
  return family(gauges_, name, help, std::move(label_names), {});
}

HistogramFamily& Registry::histogram(std::string_view name, std::string_view help,
                                     std::vector<std::string> label_names,
                                     std::span<const double> bounds) {
  (void)Histogram(bounds);  // throws on bad bounds now rather than at the first with()
  return family(histograms_, name, help, std::move(label_names), bounds);
}

Registration Registry::add_collector(Collect collect) {
  Registration r;
  const std::lock_guard lock(collectors_->mu);
  r.state_ = collectors_;
  r.id_ = collectors_->next_id++;
  collectors_->collectors.emplace(r.id_, std::move(collect));
  return r;
}

Registry::Rendered Registry::render() const {
  Writer w;
  {
    const std::lock_guard lock(mu_);
    for (const auto& f : counters_)
      f->render(w);
    for (const auto& f : gauges_)
      f->render(w);
    for (const auto& f : histograms_)
      f->render(w);
  }
  {
    const std::lock_guard lock(collectors_->mu);
    for (const auto& [id, collect] : collectors_->collectors) {
      const std::size_t before = w.chunks_.size();
      try {
        collect(w);
      } catch (...) {
        w.chunks_.resize(before);  // what it wrote may be half a family
      }
    }
  }
  auto& chunks = w.chunks_;
  std::stable_sort(chunks.begin(), chunks.end(),
                   [](const Writer::Chunk& a, const Writer::Chunk& b) { return a.name < b.name; });
  Rendered out;
  std::size_t bytes = 0;
  for (const auto& c : chunks)
    bytes += c.text.size();
  out.text.reserve(bytes);
  const Writer::Chunk* last = nullptr;
  for (const auto& c : chunks) {
    if (last != nullptr && last->name == c.name) {
      if (last->type == c.type) {
        out.text.append(c.text, c.header);  // its samples, under the first's header
      } else {
        ++out.duplicates;
      }
      continue;
    }
    last = &c;
    out.text += c.text;
    out.names.push_back(c.name);
    if (c.type == Type::histogram) {
      for (const char* suffix : {"_bucket", "_count", "_sum"})
        out.names.push_back(c.name + suffix);
    }
  }
  std::sort(out.names.begin(), out.names.end());
  return out;
}

}  // namespace metrics::telemetry
