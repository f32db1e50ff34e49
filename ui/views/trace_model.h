#pragma once
// The data behind every view, one per window: the routing trace of the conversation on screen
// (grown live by appending the stream chunks' trace segments, or replaced by a saved conversation
// or a trace file), load statistics for three windows kept incrementally (RoutingStats::add on
// new tokens only), their
// imbalance over time, KV-cache and speed histories, and the selected token. Views read it from
// their refresh timer; nothing here draws.
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "moescope/model_spec.h"
#include "moescope/routing_stats.h"
#include "moescope/routing_trace.h"
#include "ui/engine_types.h"

namespace moescope::ui {

class EngineFeed;

// Windows the statistics are taken over.
//   Answer:        the tokens of the latest answer (its new prompt tokens and the generated ones)
//   Conversation:  every token of the trace on screen
//   SinceLoad:     every token the model processed since it was loaded (live tokens only)
enum class StatsWindow { Answer = 0, Conversation = 1, SinceLoad = 2 };
QString window_label(StatsWindow w);

struct BalancePoint {
  double tokens = 0;  // tokens in the window when the point was taken
  double cv = 0, maxvio = 0, entropy = 0;  // mean over the MoE layers (RoutingStats::mean_over_layers)
  std::vector<float> layer_maxvio;         // [moe_layers]
};
struct KvPoint {
  double seconds = 0;  // generation time (idle time between answers left out)
  double tokens = 0;
  bool prefill = false;
};
struct SpeedPoint {
  double seconds = 0;       // generation time, as KvPoint
  double decode_tps = 0;    // over the last ~0.5 s
  double average_tps = 0;   // this answer so far (the engine's figure)
  double ms_per_token = 0;  // 1000 / decode_tps
};
struct MemoryPoint {
  double seconds = 0;  // generation time, as KvPoint
  int64_t bytes = 0;   // device memory the backend holds
};
struct PrefillPoint {
  double seconds = 0;
  int tokens = 0;
  double tps = 0;
  bool exact = false;  // from the finished answer's summary (else estimated from chunk arrival)
};

// Maximal runs of decode-phase tokens, [first, last): one per generated answer, in order.
std::vector<std::pair<size_t, size_t>> decode_runs(const RoutingTrace& trace);
// The latest answer's range: its last decode run with the prefill run just before it.
std::pair<size_t, size_t> last_answer_range(const RoutingTrace& trace);

class TraceModel : public QObject {
  Q_OBJECT
public:
  // The composition root makes one, connects it to the host's feed and hands it to every view.
  explicit TraceModel(QObject* parent = nullptr);
  void connectFeed(EngineFeed* feed);

  const RoutingTrace& trace() const { return *trace_; }
  std::shared_ptr<const RoutingTrace> tracePtr() const { return trace_; }
  bool hasModel() const { return has_model_; }
  const ModelInfo& model() const { return model_; }
  const ModelSpec* spec() const { return spec_.get(); }  // the loaded model's (null: none known)
  QString source() const { return source_; }
  bool generating() const { return generating_; }
  quint64 version() const { return version_; }

  const RoutingStats& stats(StatsWindow w) const { return stats_[int(w)]; }
  // Trace tokens the window covers (SinceLoad: the live part of the trace on screen).
  std::pair<size_t, size_t> range(StatsWindow w) const;
  const std::vector<BalancePoint>& timeline(StatsWindow w) const { return timeline_[int(w)]; }

  bool hasKv() const { return has_kv_; }
  const KvStats& kv() const { return kv_; }
  const std::vector<KvPoint>& kvHistory() const { return kv_history_; }
  const std::vector<SpeedPoint>& speed() const { return speed_; }
  const std::vector<PrefillPoint>& prefills() const { return prefills_; }
  // Device memory in use (CUDA backend): the latest figure (-1: the backend has none) and its history.
  int64_t deviceBytes() const { return device_bytes_; }
  const std::vector<MemoryPoint>& deviceMemory() const { return memory_; }
  double generationSeconds() const;

  int selectedToken() const { return selected_; }
  void selectToken(int index);

  // What the feed's signals do (public so tests and tools can drive the model directly).
  void setModel(const ModelInfo& info);
  void unloadModel();
  void beginGeneration();
  void addChunk(const StreamChunk& chunk);
  void finishGeneration(const GenerationSummary& summary);
  void replaceTrace(const RoutingTrace& trace, const QString& source);
  // Work done on the trace's tokens since the model was made (tokens appended from segments plus
  // tokens re-read to rebuild statistics): tests check it grows with the new tokens only.
  quint64 tokensProcessed() const { return tokens_processed_; }
  bool openTraceFile(const QString& path, QString* error = nullptr);

signals:
  void changed();  // data grew or changed; views redraw from their timers
  void reset();    // the trace was replaced or the model changed: views reset their ranges
  void tokenSelected(int index);

private:
  void ensureTraceShape();
  void resetStats(StatsWindow w);
  void rebuildWindow(StatsWindow w, size_t first, size_t last);
  void addPoint(StatsWindow w);
  void touch();

  std::shared_ptr<RoutingTrace> trace_;
  bool has_model_ = false;
  ModelInfo model_;
  std::shared_ptr<const ModelSpec> spec_;
  QString source_;
  bool generating_ = false;
  quint64 version_ = 0;

  RoutingStats stats_[3];
  std::vector<BalancePoint> timeline_[3];
  size_t answer_first_ = 0;
  size_t live_first_ = 0;  // first trace token that arrived live (SinceLoad range)

  bool has_kv_ = false;
  KvStats kv_;
  std::vector<KvPoint> kv_history_;
  std::vector<SpeedPoint> speed_;
  std::vector<PrefillPoint> prefills_;
  int64_t device_bytes_ = -1;
  std::vector<MemoryPoint> memory_;
  QElapsedTimer clock_;           // runs while generating
  double seconds_before_ = 0.0;   // generation time of earlier answers
  double answer_start_ = 0.0;     // generation time when this answer started
  std::deque<std::pair<double, int>> recent_;  // (seconds, tokens of this answer) for the rate
  int answer_prefill_tokens_ = 0;
  bool answer_decoding_ = false;
  bool answer_has_speed_ = false;  // a live speed point was taken during this answer

  int selected_ = -1;
  quint64 tokens_processed_ = 0;
};

}  // namespace moescope::ui
