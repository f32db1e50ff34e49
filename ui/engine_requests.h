#pragma once
// Commands from the UI thread to the engine host's worker, and the outcomes of the experiments,
// passed by value through queued signals. Each request carries everything it applies to (the
// routing intervention included): nothing is read from shared state on the other side.
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "moescope/corpus_analysis.h"
#include "moescope/model_weights.h"
#include "moescope/routing.h"
#include "moescope/tokenizer.h"
#include "ui/conversation.h"

namespace moescope::ui {

// Whether answers record the router's full scores (every expert's, not only the chosen ones) in
// the routing trace, for the token inspector's runners-up. They cost n_moe_layers × n_experts
// half floats per token (DeepSeek-R1: 29 KB), so Automatic records them for models where that
// is at most kAutomaticRouterScores values (8 KB per token).
enum class RouterScores { Automatic = 0, Always = 1, Never = 2 };
constexpr int kAutomaticRouterScores = 4096;
bool records_router_scores(RouterScores mode, int n_moe_layers, int n_experts);

// An OpenAI-compatible server to chat with instead of a local model (vLLM, SGLang, moescope-cli
// serve): the remote backend (ui/remote_client.h).
struct RemoteServer {
  QString url;       // base URL: http(s)://host:port (a trailing /v1 is accepted)
  QString api_key;   // sent as "Authorization: Bearer …"; never logged or saved with conversations
  QString model;     // a model id from GET /v1/models; empty: the server's first
  // The model's config.json (a file, a checkpoint folder or a preset name) for the layer and expert
  // counts when the server does not say them; empty: from the server, else from the responses.
  QString config;
  int timeout_ms = 60000;  // no byte from the server for this long ends the request
};

struct LoadRequest {
  quint64 id = 0;
  QString dir;                               // checkpoint directory or GGUF file
  QString backend = QStringLiteral("auto");  // "auto" | "cpu" | "cuda"
  int threads = 0;                           // 0: one per physical core
  int context = 0;                           // KV capacity in tokens; 0: the backend's default
  WeightsMode weights = WeightsMode::AsStored;  // Q8_0: quantise the weights on load (LoadOptions)
  // Tools and tests: a model built in memory (random weights of a published shape) instead of
  // `dir`; it has no tokenizer, so answers to it take prompt ids (GenerationRequest::prompt_ids).
  std::shared_ptr<const Model> model;
  std::optional<RemoteServer> remote;  // set: connect to this server instead of loading `dir`
};

// The models a server lists (GET /v1/models), for the connect dialog.
struct ModelListRequest {
  quint64 id = 0;
  RemoteServer server;
};
struct ModelListOutcome {
  quint64 id = 0;
  QString error;  // non-empty: the listing failed (one line)
  QStringList models;
};

struct GenerationRequest {
  quint64 id = 0;
  std::string messages_json;       // the template messages (ordered JSON array, dumped)
  std::vector<int32_t> prompt_ids; // instead of messages: the prompt as token ids (no template)
  ui::SamplingSettings sampling;
  quint64 seed = 0;                // the seed used for this answer
  RoutingControl control;          // routing experiment applied to this answer (empty: as trained)
  RouterScores router_scores = RouterScores::Automatic;  // record the router's full scores?
  bool stop_at_eos = true;         // false: exactly sampling.max_tokens tokens (benchmarks)
};

// "Compare with and without": one prompt answered greedily as trained and with `control`, on a
// session of its own beside the chat's (same loaded weights).
struct CompareRequest {
  quint64 id = 0;
  QString prompt;        // a user message, rendered with the model's chat template
  RoutingControl control;
  int max_tokens = 32;   // greedy decoding, so that any difference is the intervention's
};

struct CompareOutcome {
  struct Token {
    QString text;
    double p_original = 0.0;
    double p_intervened = 0.0;
  };
  quint64 id = 0;
  QString error;  // non-empty: failed
  QString original_text, intervened_text;
  int first_token_divergence = -1;
  int route_divergence_pos = -1;    // position in prompt + original answer
  int route_divergence_layer = -1;  // model layer index
  int prompt_tokens = 0;
  double routed_overlap = 1.0;
  std::vector<Token> changes;  // one per original answer token
};

struct AnalysisRequest {
  quint64 id = 0;
  QString corpus;  // a file (one domain) or a folder (a domain per file)
};

struct AnalysisOutcome {
  quint64 id = 0;
  QString error;
  bool cancelled = false;
  std::shared_ptr<const CorpusAnalysis> analysis;
  std::shared_ptr<const Tokenizer> tokenizer;
};

}  // namespace moescope::ui

Q_DECLARE_METATYPE(moescope::ui::LoadRequest)
Q_DECLARE_METATYPE(moescope::ui::ModelListRequest)
Q_DECLARE_METATYPE(moescope::ui::ModelListOutcome)
Q_DECLARE_METATYPE(moescope::ui::GenerationRequest)
Q_DECLARE_METATYPE(moescope::ui::CompareRequest)
Q_DECLARE_METATYPE(moescope::ui::CompareOutcome)
Q_DECLARE_METATYPE(moescope::ui::AnalysisRequest)
Q_DECLARE_METATYPE(moescope::ui::AnalysisOutcome)
