#pragma once
// Values that cross from the engine worker thread to the UI thread (copied, or shared immutable):
// a coalesced stream chunk with its segment of the routing trace, what a loaded model is, and the
// summary of a finished answer.
#include <QMetaType>
#include <QString>
#include <cstdint>
#include <memory>
#include <vector>

#include "moescope/backend.h"
#include "moescope/model_spec.h"
#include "moescope/routing_trace.h"
#include "moescope/weight_footprint.h"

namespace moescope::ui {

// What arrived since the last flush (the UI repaints once per chunk, ~30 times a second).
struct StreamChunk {
  QString text;                     // decoded text appended to the answer
  int new_tokens = 0;               // sampled tokens in this chunk
  int total_tokens = 0;             // sampled tokens of this answer so far
  double tokens_per_second = 0.0;   // decode speed of this answer so far
  bool has_kv = false;
  KvStats kv;
  int64_t device_bytes = -1;        // device memory the backend holds (CUDA), -1 when it has none
  // The routing of the tokens the engine ran since the last chunk (prompt and sampled, in order),
  // as one immutable segment of the session's trace; null when none ran. Its first token's
  // position may lie before the end of what a view holds (the session re-used a shorter cached
  // prefix after an edit or a regenerate): RoutingTrace::append cuts there first.
  std::shared_ptr<const RoutingTrace> trace;
};

struct ModelInfo {
  QString dir;           // empty for a model built in memory (tools, tests) or on a server
  QString server;        // the server's base URL when the model runs there (remote backend)
  std::shared_ptr<const ModelSpec> spec;  // the loaded model's description (shared, immutable)
  QString name;          // display name (directory name)
  QString architecture;
  QString backend;       // Backend::name()
  QString weights;       // weights_label(): "BF16", "Q4_K_M", "Q8_0 (quantised on load)"; empty on a server
  WeightsMode weights_mode = WeightsMode::AsStored;  // as load_model applied it
  // The weights as loaded, by component and type (null on a server).
  std::shared_ptr<const WeightFootprint> footprint;
  int context_length = 0;
  int n_layers = 0;
  int n_experts = 0;
  int top_k = 0;
  std::vector<int> moe_layers;
  // Where the layer and expert counts came from (remote backend: "the server", "config …",
  // "the responses" when inferred); empty for a local model.
  QString shape_source;
  // Each MoE layer's router correction bias (DeepSeek-V3 e_score_correction_bias), as floats; an
  // inner vector is empty where the layer has none (or the weights are not in host memory). The
  // token inspector rebuilds the router's steps from it (moescope/route_explain.h).
  std::shared_ptr<const std::vector<std::vector<float>>> router_bias;
  bool template_fallback = false;
  QString template_problem;
  QString generation_config_json;  // generation_config.json as read, or empty
  int64_t device_bytes = -1;       // device memory in use after loading (CUDA), -1 when none
};

struct GenerationSummary {
  quint64 request = 0;
  QString text;           // the whole answer (special tokens skipped)
  QString stop_reason;    // stop_reason_name()
  bool cancelled = false;
  bool context_full = false;
  int prompt_tokens = 0;
  int reused_tokens = 0;
  int generated_tokens = 0;
  double prefill_seconds = 0.0;   // remote backend: time to the first token (prefill and network)
  double tokens_per_second = 0.0;
  bool used_fallback = false;
  QString fallback_reason;
  KvStats kv;
  int64_t device_bytes = -1;  // as in StreamChunk
  // Said beside a complete answer (remote backend: the server sent no routing, and which flag to add).
  QString notice;
  // Non-empty: the answer ended early on this error (the server went away, a malformed payload);
  // `text` holds what had arrived, which the conversation keeps.
  QString error;
  // The session's whole trace after the answer (what the conversation keeps and saves): the
  // chunks' segments appended to the trace the conversation had, unless the session re-used a
  // prefix the conversation did not hold. Copied once per answer, never converted.
  std::shared_ptr<const RoutingTrace> trace;
};

}  // namespace moescope::ui

Q_DECLARE_METATYPE(moescope::ui::StreamChunk)
Q_DECLARE_METATYPE(moescope::ui::ModelInfo)
Q_DECLARE_METATYPE(moescope::ui::GenerationSummary)
