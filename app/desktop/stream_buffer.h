#pragma once
// Where the engine worker leaves what it produces while it generates (text, token routes, KV
// figures) and where the UI thread's flush timer takes it from, ~30 times a second. The lock is
// held only to append or to swap the buffer out, never while the engine computes.
#include <mutex>

#include "ui/engine_types.h"

namespace moescope::desktop {

class StreamBuffer {
public:
  void reset();
  void add_text(const QString& text, int tokens, double tokens_per_second);
  void add_routes(std::vector<ui::TokenRoute> routes);
  void set_kv(const KvStats& kv);
  void set_device_bytes(int64_t bytes);
  // Everything since the last take; `empty` when nothing arrived.
  ui::StreamChunk take(bool* empty);

private:
  std::mutex mutex_;
  ui::StreamChunk pending_;
  int total_tokens_ = 0;
  bool dirty_ = false;
};

}  // namespace moescope::desktop
