#pragma once
// What views see of the engine: one QObject whose signals carry engine data as values on the UI
// thread, already coalesced (~30 updates a second). The desktop app's engine controller emits
// them; dock-widget views connect to them and never talk to the worker thread themselves.
#include <QObject>
#include <memory>

#include "moescope/routing_trace.h"
#include "ui/engine_types.h"

namespace moescope::ui {

class EngineFeed : public QObject {
  Q_OBJECT
public:
  using QObject::QObject;

signals:
  void modelChanged(const moescope::ui::ModelInfo& info);
  void modelUnloaded();
  void generationStarted();
  // New text, routes and KV figures since the last chunk. Routes carry their position: the
  // engine reuses the cached prefix of the conversation, so the first route of an answer may
  // start anywhere (after an edit or a regenerate, earlier than the last known token): a route at
  // position p replaces whatever a view holds from p on.
  void chunk(const moescope::ui::StreamChunk& chunk);
  void generationFinished(const moescope::ui::GenerationSummary& summary);
  // The conversation on screen changed, or an answer finished: its whole routing trace (null
  // when it has none).
  void traceReplaced(std::shared_ptr<const moescope::RoutingTrace> trace);
};

}  // namespace moescope::ui
