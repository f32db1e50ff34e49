#pragma once
// Commands from the UI thread to the engine worker, passed by value through queued signals.
#include <QMetaType>
#include <QString>
#include <string>

#include "moescope/routing.h"
#include "ui/conversation.h"

namespace moescope::desktop {

struct LoadRequest {
  quint64 id = 0;
  QString dir;
  QString backend = QStringLiteral("auto");  // "auto" | "cpu" | "cuda"
  int threads = 0;                           // 0: all hardware threads
};

struct GenerationRequest {
  quint64 id = 0;
  std::string messages_json;  // the template messages (ordered JSON array, dumped)
  ui::SamplingSettings sampling;
  quint64 seed = 0;           // the seed used for this answer
  RoutingControl control;     // routing experiment applied to this answer (empty: as trained)
};

}  // namespace moescope::desktop

Q_DECLARE_METATYPE(moescope::desktop::LoadRequest)
Q_DECLARE_METATYPE(moescope::desktop::GenerationRequest)
