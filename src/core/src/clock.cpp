#include "metrics/core/clock.hpp"

#include <thread>

namespace metrics::core {

Clock::SystemTime RealClock::system_now() const {
  return std::chrono::system_clock::now();
}

Clock::SteadyTime RealClock::steady_now() const {
  return std::chrono::steady_clock::now();
}

void RealClock::sleep_until(SteadyTime deadline) {
  std::this_thread::sleep_until(deadline);
}

bool RealClock::wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                           SteadyTime deadline, const std::function<bool()>& pred) {
  return cv.wait_until(lock, deadline, pred);
}

std::shared_ptr<Clock> real_clock() {
  // Leaked on purpose: storage threads may still read it during static
  // destruction.
  static auto* clock = new std::shared_ptr<Clock>(std::make_shared<RealClock>());
  return *clock;
}

// A deadline in deadlines_ for as long as a thread waits on it.
class ManualClock::Registration {
 public:
  Registration(ManualClock& clock, SteadyTime deadline) : clock_(clock) {
    std::lock_guard lock(clock_.mu_);
    it_ = clock_.deadlines_.insert(deadline);
    clock_.changed_.notify_all();
  }
  ~Registration() {
    std::lock_guard lock(clock_.mu_);
    clock_.deadlines_.erase(it_);
    clock_.changed_.notify_all();
  }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  ManualClock& clock_;
  std::multiset<SteadyTime>::iterator it_;
};

ManualClock::ManualClock()
    : system_(std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}),
      steady_(SteadyTime{} + std::chrono::hours{24}) {}

Clock::SystemTime ManualClock::system_now() const {
  std::lock_guard lock(mu_);
  return system_;
}

Clock::SteadyTime ManualClock::steady_now() const {
  std::lock_guard lock(mu_);
  return steady_;
}

void ManualClock::sleep_until(SteadyTime deadline) {
  Registration reg(*this, deadline);
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return steady_ >= deadline; });
}

bool ManualClock::wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                             SteadyTime deadline, const std::function<bool()>& pred) {
  Registration reg(*this, deadline);
  // The caller's condition variable is notified by the caller's code, the
  // manual time by advance(): poll the time at a short real interval rather
  // than keep a pointer to a condition variable that may be gone.
  while (!pred()) {
    if (steady_now() >= deadline) return pred();
    cv.wait_for(lock, std::chrono::milliseconds{1});
  }
  return true;
}

void ManualClock::advance(Duration d) {
  if (d < Duration::zero()) d = Duration::zero();
  {
    std::lock_guard lock(mu_);
    steady_ += d;
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }
  changed_.notify_all();
}

void ManualClock::set_system(SystemTime t) {
  {
    std::lock_guard lock(mu_);
    system_ = t;
  }
  changed_.notify_all();
}

std::size_t ManualClock::waiters() const {
  std::lock_guard lock(mu_);
  return deadlines_.size();
}

std::optional<Clock::SteadyTime> ManualClock::await_waiter(SteadyTime after,
                                                           std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<SteadyTime> found;
  changed_.wait_for(lock, timeout, [&] {
    const auto it = deadlines_.upper_bound(after);
    if (it == deadlines_.end()) return false;
    found = *it;
    return true;
  });
  return found;
}

}  // namespace metrics::core
