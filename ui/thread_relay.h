#pragma once
// How values cross between the UI thread and the engine's thread: a Mailbox in the receiving
// thread holds the work in a std::mutex-guarded queue, and Qt only wakes it (a queued call of
// drain() without arguments). The values themselves never travel inside Qt's event queue, so every
// hand-over is ordered by a mutex that ThreadSanitizer sees: Qt's own queue synchronises inside
// the uninstrumented Qt libraries, where TSan would report every queued signal argument as a race
// (tools/sanitize.sh runs the `qthreads` tests under TSan on this basis). relay() connects a
// signal to a slot run in the mailbox's thread, as a Qt::QueuedConnection would.
#include <QObject>

#include <deque>
#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>

namespace moescope::ui {

class Mailbox : public QObject {
  Q_OBJECT

public:
  using QObject::QObject;
  ~Mailbox() override;
  // From any thread: runs `job` in this object's thread, after the jobs posted before it.
  void post(std::function<void()> job);
  // Jobs not yet run (tests).
  size_t pending() const;

private slots:
  void drain();

private:
  mutable std::mutex mu_;
  std::deque<std::function<void()>> jobs_;
};

// Every emission of `signal` runs slot(args...) in `to`'s thread with copies of the arguments
// taken in the emitting thread.
template <class Sender, class... Args, class Slot>
QMetaObject::Connection relay(Sender* sender, void (Sender::*signal)(Args...), Mailbox* to, Slot slot) {
  return QObject::connect(
      sender, signal, sender,
      [to, slot](Args... args) {
        to->post([slot, ... copies = std::decay_t<Args>(args)]() mutable { slot(copies...); });
      },
      Qt::DirectConnection);
}

}  // namespace moescope::ui
