#include "ui/stream_buffer.h"

namespace moescope::ui {

void StreamBuffer::reset() {
  std::lock_guard lock(mutex_);
  pending_ = {};
  segment_.reset();
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

void StreamBuffer::add_trace(const RoutingTrace& trace, size_t first) {
  if (first >= trace.size()) return;
  std::lock_guard lock(mutex_);
  if (segment_)
    segment_->append(trace, first, trace.size());
  else
    segment_ = std::make_unique<RoutingTrace>(trace.slice(first, trace.size()));
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

StreamChunk StreamBuffer::take(bool* empty) {
  std::lock_guard lock(mutex_);
  *empty = !dirty_;
  StreamChunk out = std::move(pending_);
  out.trace = std::shared_ptr<const RoutingTrace>(std::move(segment_));
  pending_ = {};
  pending_.total_tokens = total_tokens_;
  dirty_ = false;
  return out;
}

}  // namespace moescope::ui
