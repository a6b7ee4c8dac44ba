#include "metrics/rules/service.hpp"

namespace metrics::rules {

namespace {

std::size_t count_rules(const std::vector<GroupSpec>& groups) {
  std::size_t n = 0;
  for (const auto& g : groups)
    n += g.rules.size();
  return n;
}

}  // namespace

void AlertingService::load() {
  auto groups = load_rule_files(options_.patterns);
  std::lock_guard lock(mu_);
  group_count_ = groups.size();
  rule_count_ = count_rules(groups);
  if (manager_) {
    manager_->load(std::move(groups));
  } else {
    groups_ = std::move(groups);
  }
}

std::optional<std::string> AlertingService::reload() {
  try {
    load();
  } catch (const RuleFileError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void AlertingService::start(const query::Queryable& queryable, SampleSink* sink,
                            std::shared_ptr<telemetry::Registry> telemetry) {
  std::lock_guard lock(mu_);
  if (manager_) return;
  if (telemetry) options_.manager.telemetry = std::move(telemetry);
  manager_ = std::make_unique<Manager>(queryable, sink, options_.manager);
  manager_->load(std::move(groups_));
  groups_.clear();
  if (!options_.notifier.alertmanager_urls.empty() || !options_.notifier.webhook_urls.empty()) {
    if (options_.notifier.external_url.empty())
      options_.notifier.external_url = options_.manager.external_url;
    notifier_ = std::make_shared<HttpNotifier>(options_.notifier);
    manager_->add_notifier(notifier_);
  }
  (void)manager_->restore_state();
  manager_->start();
}

void AlertingService::stop() {
  std::lock_guard lock(mu_);
  if (manager_) manager_->stop();
  if (notifier_) notifier_->stop();
}

std::size_t AlertingService::group_count() const {
  std::lock_guard lock(mu_);
  return group_count_;
}

std::size_t AlertingService::rule_count() const {
  std::lock_guard lock(mu_);
  return rule_count_;
}

Manager* AlertingService::manager() const {
  std::lock_guard lock(mu_);
  return manager_.get();
}

NotifierStats AlertingService::notifier_stats() const {
  std::lock_guard lock(mu_);
  return notifier_ ? notifier_->stats() : NotifierStats{};
}

}  // namespace metrics::rules
