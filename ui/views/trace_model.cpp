#include "ui/views/trace_model.h"

#include <QFileInfo>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ui/engine_feed.h"

namespace moescope::ui {

namespace {
constexpr size_t kMaxPoints = 2000;  // timelines are halved beyond this (every other point kept)
constexpr double kRateWindow = 0.5;  // seconds the live decode rate is measured over

template <class T>
void decimate(std::vector<T>& v) {
  if (v.size() <= kMaxPoints) return;
  std::vector<T> kept;
  kept.reserve(v.size() / 2 + 1);
  for (size_t i = 0; i < v.size(); i += 2) kept.push_back(std::move(v[i]));
  if (!(v.size() & 1)) kept.push_back(std::move(v.back()));
  v = std::move(kept);
}
}  // namespace

QString window_label(StatsWindow w) {
  switch (w) {
    case StatsWindow::Answer: return QObject::tr("this answer");
    case StatsWindow::Conversation: return QObject::tr("this conversation");
    case StatsWindow::SinceLoad: return QObject::tr("everything since load");
  }
  return {};
}

std::vector<std::pair<size_t, size_t>> decode_runs(const RoutingTrace& trace) {
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < trace.size();) {
    if (trace.token(i).phase != Phase::Decode) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < trace.size() && trace.token(j).phase == Phase::Decode) ++j;
    runs.emplace_back(i, j);
    i = j;
  }
  return runs;
}

std::pair<size_t, size_t> last_answer_range(const RoutingTrace& trace) {
  const auto runs = decode_runs(trace);
  if (runs.empty()) return {0, trace.size()};  // prompt only: the whole trace
  size_t first = runs.back().first;
  while (first > 0 && trace.token(first - 1).phase == Phase::Prefill) --first;
  return {first, runs.back().second};
}

TraceModel::TraceModel(QObject* parent) : QObject(parent), trace_(std::make_shared<RoutingTrace>()) {
  for (int w = 0; w < 3; ++w) resetStats(StatsWindow(w));
}

void TraceModel::connectFeed(EngineFeed* feed) {
  connect(feed, &EngineFeed::modelChanged, this, &TraceModel::setModel);
  connect(feed, &EngineFeed::modelUnloaded, this, &TraceModel::unloadModel);
  connect(feed, &EngineFeed::generationStarted, this, &TraceModel::beginGeneration);
  connect(feed, &EngineFeed::chunk, this, &TraceModel::addChunk);
  connect(feed, &EngineFeed::generationFinished, this, &TraceModel::finishGeneration);
  connect(feed, &EngineFeed::traceReplaced, this, [this](std::shared_ptr<const RoutingTrace> t) {
    replaceTrace(t ? *t : RoutingTrace(), tr("saved conversation"));
  });
}

std::pair<size_t, size_t> TraceModel::range(StatsWindow w) const {
  switch (w) {
    case StatsWindow::Answer: return {std::min(answer_first_, trace_->size()), trace_->size()};
    case StatsWindow::Conversation: return {0, trace_->size()};
    case StatsWindow::SinceLoad: return {std::min(live_first_, trace_->size()), trace_->size()};
  }
  return {0, 0};
}

double TraceModel::generationSeconds() const {
  return seconds_before_ + (generating_ && clock_.isValid() ? clock_.nsecsElapsed() * 1e-9 : 0.0);
}

void TraceModel::selectToken(int index) {
  if (index >= int(trace_->size())) index = -1;
  if (index == selected_) return;
  selected_ = index;
  emit tokenSelected(index);
}

void TraceModel::touch() {
  ++version_;
  emit changed();
}

void TraceModel::resetStats(StatsWindow w) {
  stats_[int(w)] = RoutingStats::for_trace(*trace_);
  timeline_[int(w)].clear();
}

// Recomputes a window's statistics and its timeline over trace tokens [first, last), in about
// 400 steps so the "over time" plot of a loaded trace looks like the live one.
void TraceModel::rebuildWindow(StatsWindow w, size_t first, size_t last) {
  resetStats(w);
  const size_t n = last > first ? last - first : 0;
  const size_t step = std::max<size_t>(1, n / 400);
  for (size_t t = first; t < last; t += step) {
    stats_[int(w)].add(*trace_, t, std::min(last, t + step));
    addPoint(w);
  }
  tokens_processed_ += n;
}

void TraceModel::addPoint(StatsWindow w) {
  const RoutingStats& s = stats_[int(w)];
  if (s.tokens() == 0) return;
  const LayerBalance all = s.mean_over_layers();
  BalancePoint p;
  p.tokens = double(s.tokens());
  p.cv = all.cv;
  p.maxvio = all.maxvio;
  p.entropy = all.entropy;
  p.layer_maxvio.resize(s.moe_layers().size());
  for (size_t m = 0; m < p.layer_maxvio.size(); ++m) p.layer_maxvio[m] = float(s.layer(int(m)).maxvio);
  auto& tl = timeline_[int(w)];
  if (!tl.empty() && tl.back().tokens == p.tokens)
    tl.back() = std::move(p);
  else
    tl.push_back(std::move(p));
  decimate(tl);
}

void TraceModel::setModel(const ModelInfo& info) {
  model_ = info;
  has_model_ = true;
  spec_ = info.spec;
  if (!spec_ && !info.dir.isEmpty()) {  // a description made by hand (tests): read the config
    try {
      spec_ = std::make_shared<const ModelSpec>(load_model_spec(info.dir.toStdString()));
    } catch (const std::exception& e) {
      spdlog::warn("views: could not read the model's config ({}); shared experts unknown", e.what());
    }
  }
  // The conversation on screen (restored at start, or shown before the model loaded) stays when
  // its trace fits the model; otherwise the views start empty.
  const bool keep = trace_->size() > 0 && trace_->n_experts() == info.n_experts && trace_->top_k() == info.top_k &&
                    trace_->moe_layers() == info.moe_layers;
  if (!keep) {
    trace_ = std::make_shared<RoutingTrace>(info.name.toStdString(), info.n_experts, info.top_k, info.moe_layers);
    answer_first_ = 0;
    for (int w = 0; w < 2; ++w) resetStats(StatsWindow(w));
  }
  live_first_ = trace_->size();
  resetStats(StatsWindow::SinceLoad);
  has_kv_ = false;
  kv_ = {};
  kv_history_.clear();
  speed_.clear();
  prefills_.clear();
  device_bytes_ = info.device_bytes;
  memory_.clear();
  if (info.device_bytes >= 0) memory_.push_back({0.0, info.device_bytes});
  seconds_before_ = 0.0;
  source_ = tr("live");
  selected_ = -1;
  touch();
  emit reset();
}

void TraceModel::unloadModel() {
  has_model_ = false;
  model_ = {};
  spec_.reset();
  touch();
}

// Live tokens must fit the trace; a trace of another shape (a file opened before) is dropped.
void TraceModel::ensureTraceShape() {
  if (!has_model_) return;
  if (trace_->n_experts() == model_.n_experts && trace_->top_k() == model_.top_k &&
      trace_->moe_layers() == model_.moe_layers)
    return;
  trace_ = std::make_shared<RoutingTrace>(model_.name.toStdString(), model_.n_experts, model_.top_k, model_.moe_layers);
  answer_first_ = live_first_ = 0;
  resetStats(StatsWindow::Answer);
  resetStats(StatsWindow::Conversation);
  if (stats_[int(StatsWindow::SinceLoad)].n_experts() != trace_->n_experts() ||
      stats_[int(StatsWindow::SinceLoad)].moe_layers() != trace_->moe_layers())
    resetStats(StatsWindow::SinceLoad);
  selected_ = -1;
  emit reset();
}

void TraceModel::beginGeneration() {
  ensureTraceShape();
  generating_ = true;
  clock_.start();
  answer_start_ = seconds_before_;
  recent_.clear();
  recent_.emplace_back(generationSeconds(), 0);
  answer_prefill_tokens_ = 0;
  answer_decoding_ = false;
  answer_has_speed_ = false;
  answer_first_ = trace_->size();
  resetStats(StatsWindow::Answer);
  source_ = tr("live");
  touch();
}

void TraceModel::addChunk(const StreamChunk& chunk) {
  if (!has_model_) return;
  if (!generating_) beginGeneration();
  const double now = generationSeconds();

  // The chunk's trace segment: appended as it is (a segment starting at an earlier position
  // means the session re-used a shorter prefix than the trace holds: append cuts there first).
  bool truncated = false;
  const size_t before = trace_->size();
  size_t first_new = before;
  int prefill_routes = 0;
  if (const RoutingTrace* seg = chunk.trace.get(); seg && seg->size() > 0 && seg->same_shape(*trace_)) {
    const int32_t pos0 = seg->token(0).pos;
    if (pos0 >= 0 && size_t(pos0) < before) {
      truncated = true;
      first_new = size_t(pos0);
    }
    trace_->append(*seg);
    tokens_processed_ += seg->size();
    for (size_t i = 0; i < seg->size(); ++i) prefill_routes += seg->token(i).phase == Phase::Prefill;
  }
  const size_t after = trace_->size();
  if (truncated) {
    answer_first_ = std::min(answer_first_, first_new);
    live_first_ = std::min(live_first_, first_new);
    rebuildWindow(StatsWindow::Conversation, 0, after);
    rebuildWindow(StatsWindow::Answer, answer_first_, after);
    if (selected_ >= int(first_new)) selected_ = -1;
  } else if (after > before) {
    for (StatsWindow w : {StatsWindow::Answer, StatsWindow::Conversation}) {
      stats_[int(w)].add(*trace_, before, after);
      addPoint(w);
    }
  }
  if (after > first_new) {
    stats_[int(StatsWindow::SinceLoad)].add(*trace_, first_new, after);
    addPoint(StatsWindow::SinceLoad);
  }

  // KV figures.
  if (chunk.has_kv) {
    has_kv_ = true;
    kv_ = chunk.kv;
    // A chunk may hold the end of the prefill and the first sampled tokens: record both steps.
    if (prefill_routes > 0 && chunk.new_tokens > 0)
      kv_history_.push_back({now, double(std::max<int64_t>(0, chunk.kv.tokens - chunk.new_tokens)), true});
    kv_history_.push_back({now, double(chunk.kv.tokens), prefill_routes > 0 && chunk.new_tokens == 0});
    decimate(kv_history_);
  }

  // Device memory (CUDA): one point per chunk while it changes.
  if (chunk.device_bytes >= 0) {
    device_bytes_ = chunk.device_bytes;
    if (memory_.empty() || memory_.back().bytes != chunk.device_bytes || now - memory_.back().seconds > 1.0) {
      memory_.push_back({now, chunk.device_bytes});
      decimate(memory_);
    }
  }

  // Speed: prefill estimated when its routes arrive (corrected by the summary at the end), decode
  // measured over the last half second of sampled tokens.
  if (prefill_routes > 0 && !answer_decoding_) {
    answer_prefill_tokens_ += prefill_routes;
    const double elapsed = now - (recent_.empty() ? now : recent_.front().first);
    if (elapsed > 0) {
      if (!prefills_.empty() && !prefills_.back().exact && prefills_.back().seconds >= recent_.front().first)
        prefills_.pop_back();
      prefills_.push_back({now, answer_prefill_tokens_, answer_prefill_tokens_ / elapsed, false});
    }
  }
  if (chunk.new_tokens > 0) {
    if (!answer_decoding_) {
      // Rate measured from the first sampled token on (prefill time excluded).
      answer_decoding_ = true;
      recent_.clear();
      recent_.emplace_back(now, chunk.total_tokens);
    } else {
      recent_.emplace_back(now, chunk.total_tokens);
      while (recent_.size() > 2 && now - recent_[1].first >= kRateWindow) recent_.pop_front();
      const double dt = now - recent_.front().first;
      const int dn = chunk.total_tokens - recent_.front().second;
      if (dt > 0 && dn > 0) {
        const double tps = dn / dt;
        speed_.push_back({now, tps, chunk.tokens_per_second, 1000.0 / tps});
        answer_has_speed_ = true;
        decimate(speed_);
      }
    }
  }
  touch();
}

void TraceModel::finishGeneration(const GenerationSummary& summary) {
  const double now = generationSeconds();
  if (generating_) seconds_before_ = now;
  generating_ = false;
  const int prompt_new = summary.prompt_tokens - summary.reused_tokens;
  if (summary.prefill_seconds > 0 && prompt_new > 0) {
    if (!prefills_.empty() && !prefills_.back().exact) prefills_.pop_back();
    // Plotted where the prefill ended: the answer's start plus its prefill time.
    prefills_.push_back({answer_start_ + summary.prefill_seconds, prompt_new, prompt_new / summary.prefill_seconds, true});
  }
  // The answer's exact decode speed closes its speed curve (an answer shorter than two chunks
  // would have no point at all otherwise).
  if (summary.generated_tokens > 1 && summary.tokens_per_second > 0) {
    const double tps = summary.tokens_per_second;
    const double current = answer_has_speed_ ? speed_.back().decode_tps : tps;
    speed_.push_back({now, current, tps, 1000.0 / current});
    decimate(speed_);
  }
  if (summary.kv.capacity > 0) {
    has_kv_ = true;
    kv_ = summary.kv;
  }
  if (summary.device_bytes >= 0) {
    device_bytes_ = summary.device_bytes;
    memory_.push_back({now, summary.device_bytes});
    decimate(memory_);
  }
  // The session's whole trace: the same tokens as the segments built here, unless this model
  // held another conversation's trace when the answer began (then it is taken as it is).
  if (summary.trace && summary.trace->same_shape(*trace_) && summary.trace->size() != trace_->size()) {
    replaceTrace(*summary.trace, tr("live"));
    live_first_ = 0;
  }
  touch();
}

void TraceModel::replaceTrace(const RoutingTrace& trace, const QString& source) {
  trace_ = std::make_shared<RoutingTrace>(trace);
  source_ = source;
  generating_ = false;
  live_first_ = trace_->size();
  answer_first_ = last_answer_range(*trace_).first;
  rebuildWindow(StatsWindow::Conversation, 0, trace_->size());
  rebuildWindow(StatsWindow::Answer, answer_first_, trace_->size());
  if (stats_[int(StatsWindow::SinceLoad)].n_experts() != trace_->n_experts() ||
      stats_[int(StatsWindow::SinceLoad)].moe_layers() != trace_->moe_layers())
    resetStats(StatsWindow::SinceLoad);
  selected_ = -1;
  touch();
  emit reset();
}

bool TraceModel::openTraceFile(const QString& path, QString* error) {
  try {
    replaceTrace(RoutingTrace::load(path.toStdString()), QFileInfo(path).fileName());
    return true;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    spdlog::warn("views: cannot open trace {}: {}", path.toStdString(), e.what());
    return false;
  }
}

}  // namespace moescope::ui
