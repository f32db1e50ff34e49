#pragma once
// Where the engine worker leaves what it produces while it generates (text, the new part of the
// routing trace, KV figures) and where the UI thread's flush timer takes it from, ~30 times a
// second. The trace is gathered into one segment per flush, in the engine's own RoutingTrace
// form, and leaves as an immutable shared segment. The lock is held only to append or to swap the
// buffer out, never while the engine computes.
#include <memory>
#include <mutex>

#include "moescope/routing_trace.h"
#include "ui/engine_types.h"

namespace moescope::ui {

class StreamBuffer {
public:
  void reset();
  void add_text(const QString& text, int tokens, double tokens_per_second);
  // Tokens [first, trace.size()) of the session's trace.
  void add_trace(const RoutingTrace& trace, size_t first);
  void set_kv(const KvStats& kv);
  void set_device_bytes(int64_t bytes);
  // Everything since the last take; `empty` when nothing arrived.
  StreamChunk take(bool* empty);

private:
  std::mutex mutex_;
  StreamChunk pending_;
  std::unique_ptr<RoutingTrace> segment_;  // the trace since the last take
  int total_tokens_ = 0;
  bool dirty_ = false;
};

}  // namespace moescope::ui
