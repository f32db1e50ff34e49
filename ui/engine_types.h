#pragma once
// Values that cross from the engine worker thread to the UI thread (all copied, never shared):
// the routing of newly produced tokens, a coalesced stream chunk, what a loaded model is, and the
// summary of a finished answer.
#include <QMetaType>
#include <QString>
#include <cstdint>
#include <vector>

#include "moescope/backend.h"

namespace moescope::ui {

// One token's routing: experts and weights for every MoE layer, [n_moe_layers][top_k].
struct TokenRoute {
  int pos = 0;
  int32_t id = 0;
  QString text;
  bool prefill = false;
  int n_moe_layers = 0;
  int top_k = 0;
  std::vector<int16_t> experts;  // -1: none
  std::vector<float> weights;
  // The router's full scores, [n_moe_layers][n_experts], when the engine recorded them (the
  // token inspector's runners-up); empty otherwise.
  int n_experts = 0;
  std::vector<float> probs;
};

// What arrived since the last flush (the UI repaints once per chunk, ~30 times a second).
struct StreamChunk {
  QString text;                     // decoded text appended to the answer
  int new_tokens = 0;               // sampled tokens in this chunk
  int total_tokens = 0;             // sampled tokens of this answer so far
  double tokens_per_second = 0.0;   // decode speed of this answer so far
  bool has_kv = false;
  KvStats kv;
  int64_t device_bytes = -1;        // device memory the backend holds (CUDA), -1 when it has none
  std::vector<TokenRoute> routes;   // prefill and decode tokens, in order
};

struct ModelInfo {
  QString dir;
  QString name;          // display name (directory name)
  QString architecture;
  QString backend;       // Backend::name()
  int context_length = 0;
  int n_layers = 0;
  int n_experts = 0;
  int top_k = 0;
  std::vector<int> moe_layers;
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
  double prefill_seconds = 0.0;
  double tokens_per_second = 0.0;
  bool used_fallback = false;
  QString fallback_reason;
  KvStats kv;
  int64_t device_bytes = -1;  // as in StreamChunk
  QString trace_json;     // the session's routing trace (whole conversation) as JSON text
};

}  // namespace moescope::ui

Q_DECLARE_METATYPE(moescope::ui::StreamChunk)
Q_DECLARE_METATYPE(moescope::ui::ModelInfo)
Q_DECLARE_METATYPE(moescope::ui::GenerationSummary)
