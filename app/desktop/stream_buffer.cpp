#include "stream_buffer.h"

namespace moescope::desktop {

void StreamBuffer::reset() {
  std::lock_guard lock(mutex_);
  pending_ = {};
  total_tokens_ = 0;
  dirty_ = false;
}

void StreamBuffer::add_text(const QString& text, int tokens, double tokens_per_second) {
  std::lock_guard lock(mutex_);
  pending_.text += text;
  pending_.new_tokens += tokens;
  total_tokens_ += tokens;
  pending_.total_tokens = total_tokens_;
  pending_.tokens_per_second = tokens_per_second;
  dirty_ = true;
}

void StreamBuffer::add_routes(std::vector<ui::TokenRoute> routes) {
  std::lock_guard lock(mutex_);
  for (auto& r : routes) pending_.routes.push_back(std::move(r));
  dirty_ = true;
}

void StreamBuffer::set_kv(const KvStats& kv) {
  std::lock_guard lock(mutex_);
  pending_.kv = kv;
  pending_.has_kv = true;
  dirty_ = true;
}

void StreamBuffer::set_device_bytes(int64_t bytes) {
  std::lock_guard lock(mutex_);
  pending_.device_bytes = bytes;
}

ui::StreamChunk StreamBuffer::take(bool* empty) {
  std::lock_guard lock(mutex_);
  *empty = !dirty_;
  ui::StreamChunk out = std::move(pending_);
  pending_ = {};
  pending_.total_tokens = total_tokens_;
  dirty_ = false;
  return out;
}

}  // namespace moescope::desktop
