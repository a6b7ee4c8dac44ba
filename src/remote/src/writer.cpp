#include "metrics/remote/writer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"
#include "metrics/exposition/text_format.hpp"

namespace metrics::remote {
namespace {

constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
// At most one line of a kind this often (drops, failed attempts, refusals).
constexpr auto kLogInterval = std::chrono::seconds{10};
// Catch-up builds requests out of this many history samples at a time.
constexpr std::size_t kCatchUpChunk = 50'000;
// The answer's body in a log line, at most.
constexpr std::size_t kBodyInLog = 512;

std::string describe_current() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

template <typename... Args>
void log_safely(spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt,
                Args&&... args) noexcept {
  try {
    spdlog::log(level, fmt, std::forward<Args>(args)...);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a log failure must not stop sending
  }
}

std::string answer_text(const outbound::Response& r) {
  if (r.transport != outbound::Transport::answered) return r.error.empty() ? "no answer" : r.error;
  std::string body = r.body.substr(0, kBodyInLog);
  std::replace(body.begin(), body.end(), '\n', ' ');
  while (!body.empty() && body.back() == ' ')
    body.pop_back();
  return "HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body);
}

std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::string redact_url(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto start = scheme + 3;
  const auto path = url.find_first_of("/?#", start);
  const auto authority =
      url.substr(start, path == std::string_view::npos ? url.npos : path - start);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start)) + "<redacted>@" +
         std::string(url.substr(start + at + 1));
}

Outcome classify(const outbound::Response& response) noexcept {
  if (response.transport != outbound::Transport::answered) return Outcome::retry;
  const long s = response.status;
  if (s >= 200 && s < 300) return Outcome::delivered;
  if (s >= 500 || s == 429) return Outcome::retry;
  return Outcome::refused;
}

std::chrono::milliseconds next_backoff(std::chrono::milliseconds current,
                                       std::chrono::milliseconds min,
                                       std::chrono::milliseconds max) noexcept {
  const auto doubled = current * 2;
  return std::clamp(doubled, min, std::max(min, max));
}

// ---- BatchBuilder ------------------------------------------------------

void BatchBuilder::add(std::uint64_t ref, std::string_view name, const core::Labels& labels,
                       std::int64_t t_ms, double value) {
  entries_.push_back({.ref = ref,
                      .t = t_ms,
                      .value = value,
                      .seq = static_cast<std::uint32_t>(entries_.size()),
                      .name = name,
                      .labels = &labels});
}

std::vector<BatchBuilder::Request> BatchBuilder::build(
    std::size_t max_samples, const std::unordered_map<std::uint64_t, std::int64_t>& last_sent,
    std::uint64_t& skipped, std::span<const core::LabelView> external) {
  if (max_samples == 0) max_samples = 1;
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    if (a.ref != b.ref) return a.ref < b.ref;
    if (a.t != b.t) return a.t < b.t;
    return a.seq < b.seq;
  });
  std::vector<Request> out;
  Request current;
  std::vector<exposition::Sample> samples;
  std::string mapped;
  std::vector<core::LabelView> merged;  // with external labels: the series' and __name__
  for (std::size_t i = 0; i < entries_.size();) {
    std::size_t j = i;
    while (j < entries_.size() && entries_[j].ref == entries_[i].ref)
      ++j;
    const auto found = last_sent.find(entries_[i].ref);
    samples.clear();
    for (std::size_t k = i; k < j; ++k) {
      // A repeated timestamp: the value given last wins.
      if (k + 1 < j && entries_[k + 1].t == entries_[k].t) {
        ++skipped;
        continue;
      }
      if (found != last_sent.end() && entries_[k].t <= found->second) {
        ++skipped;
        continue;
      }
      samples.push_back({entries_[k].value, entries_[k].t});
    }
    const Entry& first = entries_[i];
    std::string_view name = first.name;
    if (!exposition::is_valid_metric_name(name)) {
      mapped = exposition::map_metric_name(name);
      name = mapped;
    }
    if (!external.empty()) {
      merged.clear();
      merged.push_back({"__name__", name});
      for (const core::LabelView l : *first.labels)
        merged.push_back(l);
      for (const core::LabelView& e : external) {
        if (!first.labels->get(e.name)) merged.push_back(e);
      }
      std::sort(merged.begin(), merged.end(),
                [](const core::LabelView& a, const core::LabelView& b) { return a.name < b.name; });
    }
    std::size_t offset = 0;
    while (offset < samples.size()) {
      const std::size_t take = std::min(max_samples - current.samples, samples.size() - offset);
      const auto part = std::span<const exposition::Sample>(samples).subspan(offset, take);
      if (external.empty()) {
        exposition::append_series(current.body, name, *first.labels, part);
      } else {
        exposition::append_series(current.body, merged, part);
      }
      current.samples += take;
      current.newest.emplace_back(first.ref, part.back().timestamp_ms);
      offset += take;
      if (current.samples >= max_samples) {
        out.push_back(std::move(current));
        current = Request{};
      }
    }
    i = j;
  }
  if (current.samples > 0) out.push_back(std::move(current));
  entries_.clear();
  return out;
}

// ---- State file ----------------------------------------------------------

std::string state_file(std::string_view dir, std::string_view url) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(url)));
  return (std::filesystem::path(dir) / ("remote-write-" + std::string(hex) + ".state")).string();
}

std::optional<std::int64_t> read_state(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string line;
  while (std::getline(in, line)) {
    constexpr std::string_view key = "watermark_ms ";
    if (line.starts_with(key)) {
      try {
        std::size_t used = 0;
        const auto v = std::stoll(line.substr(key.size()), &used);
        if (used == line.size() - key.size()) return v;
      } catch (...) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

bool write_state(const std::string& path, std::string_view url, std::int64_t watermark_ms) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    // The URL is for a reader; only the watermark is read back.
    out << "remote-write state 1\nurl " << url << "\nwatermark_ms " << watermark_ms << "\n";
    out.flush();
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

// ---- RemoteWriter --------------------------------------------------------

RemoteWriter::RemoteWriter(RemoteWriteOptions options)
    : options_(std::move(options)), transport_(options_.transport) {
  if (options_.max_batch_samples == 0) options_.max_batch_samples = 1;
  if (!transport_) {
    transport_ = std::make_shared<outbound::Client>(outbound::ClientOptions{
        .timeout = options_.timeout, .ca_file = {}, .abort_at = &abort_at_});
  }
  request_headers_ = {
      "Content-Encoding: " + std::string(exposition::kRemoteWriteEncoding),
      "Content-Type: " + std::string(exposition::kRemoteWriteContentType),
      "User-Agent: " + options_.user_agent,
      "X-Prometheus-Remote-Write-Version: " + std::string(exposition::kRemoteWriteVersion)};
  request_headers_.insert(request_headers_.end(), options_.headers.begin(), options_.headers.end());
  for (const auto& [name, value] : options_.external_labels)
    external_.push_back({name, value});
  std::sort(external_.begin(), external_.end(),
            [](const core::LabelView& a, const core::LabelView& b) { return a.name < b.name; });
  shown_ = redact_url(options_.url);
  stats_.url = shown_;
  busy_ = true;  // until run() has looked at the state file
  thread_ = std::thread([this] { run(); });
}

RemoteWriter::~RemoteWriter() {
  stop();
}

std::int64_t RemoteWriter::now_ms() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RemoteWriter::accept(std::int64_t received_ms, std::span<const core::Point> points,
                          std::span<const std::uint64_t> refs,
                          std::span<const std::int64_t> times) noexcept {
  const std::size_t n = std::min(points.size(), refs.size());
  if (n == 0) return;
  const bool own_times = times.size() >= n;
  std::int64_t min_ms = received_ms, max_ms = received_ms;
  if (own_times) {
    const auto [lo, hi] =
        std::minmax_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(n));
    min_ms = *lo;
    max_ms = *hi;
  }
  // The copy is made before the lock (other I/O threads do not wait for
  // it), unless the queue is seen full already.
  std::optional<Batch> owned;
  if (queued_samples_.load(std::memory_order_relaxed) + n <= options_.max_queue_samples) {
    try {
      Batch b;
      b.received_ms = received_ms;
      b.points.assign(points.begin(), points.begin() + static_cast<std::ptrdiff_t>(n));
      b.refs.assign(refs.begin(), refs.begin() + static_cast<std::ptrdiff_t>(n));
      if (own_times) b.times.assign(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(n));
      b.min_ms = min_ms;
      b.max_ms = max_ms;
      owned = std::move(b);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory: dropped below, counted
    }
  }
  std::unique_lock lock(mu_);
  if (!owned || stopping_ || queued_samples_ + n > options_.max_queue_samples) {
    stats_.dropped_samples += n;
    ++unlogged_drops_;
    const bool recoverable = options_.history && !stopping_;
    if (recoverable) {
      lost_from_ = std::min(lost_from_, min_ms);
      lost_until_ = std::max(lost_until_, max_ms);
    }
    const auto now = std::chrono::steady_clock::now();
    if (stats_.dropped_samples == n || now - last_drop_log_ >= kLogInterval) {
      const auto drops = std::exchange(unlogged_drops_, 0);
      last_drop_log_ = now;
      const auto total = stats_.dropped_samples;
      lock.unlock();
      log_safely(spdlog::level::warn,
                 "remote write {}: queue full ({} samples) or stopping: {} batch(es) dropped "
                 "since the last report ({} samples in all){}",
                 shown_, options_.max_queue_samples, drops, total,
                 recoverable ? "; they will be sent from the history" : "");
      lock.lock();
    }
    if (recoverable) wake_.notify_one();
    return;
  }
  owned->queued_at = std::chrono::steady_clock::now();
  const bool was_empty = queue_.empty();
  if (was_empty) oldest_queued_ = owned->queued_at;
  // Cannot throw for want of memory in a way that loses the count: a deque
  // push that fails leaves the queue as it was.
  try {
    queue_.push_back(std::move(*owned));
  } catch (...) {
    stats_.dropped_samples += n;
    if (options_.history) {
      lost_from_ = std::min(lost_from_, min_ms);
      lost_until_ = std::max(lost_until_, max_ms);
    }
    return;
  }
  queued_samples_ += n;
  if (waiting_ && (was_empty || queued_samples_ >= options_.max_batch_samples)) wake_.notify_one();
}

void RemoteWriter::stop() noexcept {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    deadline_ = std::chrono::steady_clock::now() + options_.shutdown_flush;
    abort_at_.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline_.time_since_epoch()).count());
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  stopped_ = true;
}

bool RemoteWriter::idle() const {
  std::lock_guard lock(mu_);
  return queue_.empty() && !busy_ && lost_from_ == kNone;
}

RemoteWriteStats RemoteWriter::stats() const {
  std::lock_guard lock(mu_);
  RemoteWriteStats s = stats_;
  s.queued_samples = queued_samples_;
  return s;
}

void RemoteWriter::advance_watermark(std::int64_t candidate) {
  if (candidate <= watermark_) return;
  watermark_ = candidate;
  std::lock_guard lock(mu_);
  stats_.watermark_ms = watermark_;
}

void RemoteWriter::prune_last_sent() {
  // A series not sent for a minute before the watermark cannot meet an
  // older sample of its own again (what is still to come is newer than the
  // watermark, give or take the writes in flight): its entry goes, so that
  // series that expired do not stay here forever.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_prune_ < std::chrono::minutes{1}) return;
  last_prune_ = now;
  const std::int64_t cutoff = watermark_ - 60'000;
  std::erase_if(last_sent_, [cutoff](const auto& entry) { return entry.second < cutoff; });
}

void RemoteWriter::persist(bool force) {
  if (options_.state_path.empty() || watermark_ == persisted_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_persist_ < std::chrono::seconds{1}) return;
  last_persist_ = now;
  if (write_state(options_.state_path, shown_, watermark_)) {
    persisted_ = watermark_;
  } else {
    log_safely(spdlog::level::warn, "remote write {}: cannot write the state file {}", shown_,
               options_.state_path);
  }
}

bool RemoteWriter::wait_backoff(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  const auto target = std::chrono::steady_clock::now() + delay;
  const auto give_up = [&] { return stopping_ && target > deadline_; };
  if (give_up()) return false;
  wake_.wait_until(lock, target, give_up);
  return !give_up();
}

RemoteWriter::Send RemoteWriter::send_one(BatchBuilder::Request& request, bool from_history) {
  const std::string wire = exposition::snappy_compress(request.body);
  const outbound::Request http{
      .url = options_.url, .headers = request_headers_, .body = wire, .sign_key = {}};
  auto backoff = options_.min_backoff;
  for (;;) {
    const outbound::Response answer = transport_->perform(http);
    const Outcome outcome = classify(answer);
    const auto now = std::chrono::steady_clock::now();
    if (outcome == Outcome::retry) {
      std::uint64_t attempts = 0;
      {
        std::lock_guard lock(mu_);
        ++stats_.retried_requests;
      }
      ++unlogged_fails_;
      if (!failing_ || now - last_fail_log_ >= kLogInterval) {
        attempts = std::exchange(unlogged_fails_, 0);
        last_fail_log_ = now;
        log_safely(spdlog::level::warn,
                   "remote write {}: {} ({} attempt(s) since the last report); retrying with "
                   "backoff up to {} ms",
                   shown_, answer_text(answer), attempts, options_.max_backoff.count());
      }
      failing_ = true;
      if (!wait_backoff(backoff)) return Send::abandoned;
      backoff = next_backoff(backoff, options_.min_backoff, options_.max_backoff);
      continue;
    }
    if (failing_) {
      failing_ = false;
      unlogged_fails_ = 0;
      log_safely(spdlog::level::info, "remote write {}: sending again", shown_);
    }
    for (const auto& [ref, t] : request.newest) {
      auto& last = last_sent_[ref];
      last = std::max(last, t);
    }
    std::lock_guard lock(mu_);
    if (outcome == Outcome::delivered) {
      stats_.sent_samples += request.samples;
      ++stats_.sent_requests;
      if (from_history) stats_.catchup_samples += request.samples;
    } else {
      stats_.failed_samples += request.samples;
      ++stats_.failed_requests;
      // Every refusal is counted; the first and then one every interval are logged.
      if (stats_.failed_requests == 1 || now - last_refusal_log_ >= kLogInterval) {
        last_refusal_log_ = now;
        const auto total = stats_.failed_samples;
        log_safely(spdlog::level::err,
                   "remote write {}: refused ({}): {} sample(s) not sent ({} refused in all; "
                   "not retried)",
                   shown_, answer_text(answer), request.samples, total);
      }
    }
    return Send::done;
  }
}

RemoteWriter::Send RemoteWriter::send_all(std::vector<BatchBuilder::Request>& requests,
                                          bool from_history) {
  for (auto& r : requests) {
    if (send_one(r, from_history) == Send::abandoned) return Send::abandoned;
  }
  return Send::done;
}

void RemoteWriter::live_turn(std::unique_lock<std::mutex>& lock) {
  std::vector<Batch> taken;
  std::size_t n = 0;
  while (!queue_.empty() && n < options_.max_batch_samples) {
    n += queue_.front().points.size();
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_samples_ -= n;
  if (!queue_.empty()) oldest_queued_ = queue_.front().queued_at;
  busy_ = true;
  lock.unlock();

  Send result = Send::done;
  std::uint64_t skipped = 0;
  try {
    BatchBuilder builder;
    for (const Batch& b : taken) {
      for (std::size_t i = 0; i < b.points.size(); ++i) {
        const core::Point& p = b.points[i];
        // The batch's receive time, as append_history() stores it: the
        // catch-up's filter relies on both paths giving a sample one time.
        builder.add(b.refs[i], p.id, p.labels, b.times.empty() ? b.received_ms : b.times[i],
                    p.type == core::MetricType::counter ? static_cast<double>(p.total) : p.value);
      }
    }
    auto requests = builder.build(options_.max_batch_samples, last_sent_, skipped, external_);
    result = send_all(requests, false);
  } catch (...) {
    log_safely(spdlog::level::err, "remote write {}: a batch failed: {}", shown_,
               describe_current());
  }

  lock.lock();
  stats_.skipped_samples += skipped;
  busy_ = false;
  if (result == Send::abandoned) {
    // Stopping: what was not sent goes back, so the watermark stays before it.
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
      queued_samples_ += it->points.size();
      queue_.push_front(std::move(*it));
    }
    return;
  }
  std::int64_t candidate = now_ms() - options_.publish_margin.count();
  if (!queue_.empty()) candidate = std::min(candidate, queue_.front().received_ms - 1);
  if (lost_from_ != kNone) candidate = std::min(candidate, lost_from_ - 1);
  lock.unlock();
  if (!incomplete_) advance_watermark(candidate);
  prune_last_sent();
  persist(false);
  lock.lock();
}

void RemoteWriter::catch_up(std::int64_t from_ms, std::int64_t until_ms) {
  log_safely(spdlog::level::info, "remote write {}: catching up from the history since {} ms",
             shown_, from_ms);
  std::int64_t cursor = from_ms;
  std::int64_t window = 10'000;
  bool finished = false;
  std::uint64_t sent_before = 0;
  {
    std::lock_guard lock(mu_);
    sent_before = stats_.catchup_samples;
  }
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    const std::int64_t horizon = now_ms() - options_.settle.count();
    if (cursor > horizon) {
      if (cursor > until_ms) {
        finished = true;
        break;
      }
      // Samples up to until_ms were taken off the queue: wait until the
      // history surely holds them.
      if (!wait_backoff(std::chrono::milliseconds{
              std::clamp<std::int64_t>(cursor - horizon, 1, options_.settle.count() + 1)})) {
        break;
      }
      continue;
    }
    const std::int64_t end = horizon - cursor < window ? horizon : cursor + window - 1;
    std::size_t total = 0;
    Send result = Send::done;
    std::uint64_t skipped = 0;
    try {
      const std::vector<history::SeriesSamples> series = options_.history(cursor, end);
      BatchBuilder builder;
      for (const auto& s : series) {
        if (!s.identity) continue;
        const bool counter = s.identity->type == core::MetricType::counter;
        for (const auto& sample : s.samples) {
          builder.add(s.ref, s.identity->id, s.identity->labels, sample.t_ms,
                      counter ? static_cast<double>(sample.counter()) : sample.gauge());
          ++total;
          if (builder.size() >= kCatchUpChunk) {
            auto requests =
                builder.build(options_.max_batch_samples, last_sent_, skipped, external_);
            if ((result = send_all(requests, true)) == Send::abandoned) break;
          }
        }
        if (result == Send::abandoned) break;
      }
      if (result == Send::done && !builder.empty()) {
        auto requests = builder.build(options_.max_batch_samples, last_sent_, skipped, external_);
        result = send_all(requests, true);
      }
    } catch (...) {
      log_safely(spdlog::level::err, "remote write {}: catch-up failed at {} ms: {}", shown_,
                 cursor, describe_current());
      result = Send::abandoned;
    }
    {
      std::lock_guard lock(mu_);
      stats_.skipped_samples += skipped;
    }
    if (result == Send::abandoned) break;
    advance_watermark(end);
    persist(false);
    cursor = end + 1;
    // About 50,000 to 200,000 samples a window.
    if (total > 4 * kCatchUpChunk) {
      window = std::max<std::int64_t>(1000, window / 2);
    } else if (total < kCatchUpChunk) {
      window = std::min<std::int64_t>(3'600'000, window * 2);
    }
  }
  std::lock_guard lock(mu_);
  if (!finished) incomplete_ = true;
  const auto sent = stats_.catchup_samples - sent_before;
  log_safely(spdlog::level::info,
             "remote write {}: catch-up {} at {} ms: {} sample(s) sent from the history", shown_,
             stopping_ ? "interrupted" : "done", cursor, sent);
}

void RemoteWriter::run() {
  std::optional<std::int64_t> saved;
  if (!options_.state_path.empty()) saved = read_state(options_.state_path);
  if (saved && options_.history) {
    watermark_ = *saved;
    {
      std::lock_guard lock(mu_);
      stats_.watermark_ms = watermark_;
    }
    catch_up(*saved + 1, *saved);
  } else {
    advance_watermark(now_ms());
  }
  persist(true);

  std::unique_lock lock(mu_);
  busy_ = false;
  const auto wants_catch_up = [this] { return lost_from_ != kNone && options_.history; };
  for (;;) {
    if (wants_catch_up() && !stopping_) {
      std::int64_t from = lost_from_;
      std::int64_t until = lost_until_;
      for (const Batch& b : queue_) {
        from = std::min(from, b.min_ms);
        until = std::max(until, b.max_ms);
      }
      queue_.clear();
      queued_samples_ = 0;
      lost_from_ = kNone;
      lost_until_ = std::numeric_limits<std::int64_t>::min();
      busy_ = true;
      stats_.catching_up = true;
      lock.unlock();
      catch_up(from, until);
      lock.lock();
      busy_ = false;
      stats_.catching_up = false;
      continue;
    }
    if (queue_.empty()) {
      if (stopping_) break;
      waiting_ = true;
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || wants_catch_up(); });
      waiting_ = false;
      continue;
    }
    if (stopping_) {
      if (std::chrono::steady_clock::now() >= deadline_) break;
    } else if (queued_samples_ < options_.max_batch_samples) {
      const auto due = oldest_queued_ + options_.flush_interval;
      if (std::chrono::steady_clock::now() < due) {
        waiting_ = true;
        wake_.wait_until(lock, due, [&] {
          return stopping_ || queued_samples_ >= options_.max_batch_samples || wants_catch_up();
        });
        waiting_ = false;
        continue;
      }
    }
    live_turn(lock);
  }

  // The last watermark: everything was accepted before stop(), so with
  // nothing left over it is now.
  std::int64_t last = now_ms();
  for (const Batch& b : queue_)
    last = std::min(last, b.received_ms - 1);
  if (lost_from_ != kNone) last = std::min(last, lost_from_ - 1);
  const std::size_t left = queued_samples_.load();
  lock.unlock();
  if (left > 0) {
    log_safely(spdlog::level::warn,
               "remote write {}: stopping with {} sample(s) not sent; they are sent from the "
               "history at the next start",
               shown_, left);
  }
  if (!incomplete_) advance_watermark(last);
  persist(true);
}

}  // namespace metrics::remote
