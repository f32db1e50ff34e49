#include "ui/thread_relay.h"

namespace moescope::ui {

Mailbox::~Mailbox() {
  // The last post() from another thread touched this object under the lock: taking it here orders
  // that before the delete (Qt's QThread::wait synchronises where TSan cannot see it).
  std::lock_guard lock(mu_);
}

void Mailbox::post(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  // By name: Qt builds the queued call inside its library, with nothing of ours in it. Under the
  // lock, so that the destructor's lock orders this last use of the object before its deletion.
  QMetaObject::invokeMethod(this, "drain", Qt::QueuedConnection);
}

size_t Mailbox::pending() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void Mailbox::drain() {  // one wake-up per job: each runs once, in order
  std::function<void()> job;
  {
    std::lock_guard lock(mu_);
    if (jobs_.empty()) return;
    job = std::move(jobs_.front());
    jobs_.pop_front();
  }
  job();
}

}  // namespace moescope::ui
