#pragma once
// Commands from the UI thread to the engine worker, passed by value through queued signals.
#include <QMetaType>
#include <QString>
#include <string>

#include "moescope/routing.h"
#include "ui/conversation.h"

namespace moescope::desktop {

// Whether answers record the router's full scores (every expert's, not only the chosen ones) in
// the routing trace, for the token inspector's runners-up. They cost n_moe_layers × n_experts
// half floats per token (DeepSeek-R1: 29 KB), so Automatic records them for models where that
// is at most kAutomaticRouterScores values (8 KB per token).
enum class RouterScores { Automatic = 0, Always = 1, Never = 2 };
constexpr int kAutomaticRouterScores = 4096;
bool records_router_scores(RouterScores mode, int n_moe_layers, int n_experts);

struct LoadRequest {
  quint64 id = 0;
  QString dir;
  QString backend = QStringLiteral("auto");  // "auto" | "cpu" | "cuda"
  int threads = 0;                           // 0: one per physical core
};

struct GenerationRequest {
  quint64 id = 0;
  std::string messages_json;  // the template messages (ordered JSON array, dumped)
  ui::SamplingSettings sampling;
  quint64 seed = 0;           // the seed used for this answer
  RoutingControl control;     // routing experiment applied to this answer (empty: as trained)
  RouterScores router_scores = RouterScores::Automatic;  // record the router's full scores?
};

}  // namespace moescope::desktop

Q_DECLARE_METATYPE(moescope::desktop::LoadRequest)
Q_DECLARE_METATYPE(moescope::desktop::GenerationRequest)
