#pragma once
// File ▸ Open routing dump: routed-experts dumps that pipelines record (JSON lines of vLLM / SGLang
// / moescope-cli serve responses, numpy or safetensors arrays [sequences, tokens, layers, top_k]
// with token ids beside) shown in every view, one sequence at a time (moescope/routing_dump.h:
// the file is memory-mapped or indexed, never read whole), with statistics over the whole dump
// streamed on a thread of their own (progress, cancel).
#include <QPointer>
#include <QWidget>
#include <atomic>
#include <memory>

#include "moescope/routing_dump.h"

class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTextBrowser;
class QThread;

namespace moescope::ui {
class TraceModel;
}

namespace moescope::desktop {

class DumpPanel : public QWidget {
  Q_OBJECT
public:
  // traces: where a shown sequence goes (every view reads it).
  DumpPanel(ui::TraceModel* traces, QWidget* parent = nullptr);
  ~DumpPanel() override;

  // Opens `path` (token ids beside it optional); config: a config.json, checkpoint folder or
  // preset name for the layers and experts; empty: as the file says (layers 0..L-1).
  // False with `error` set on a bad file (the panel shows the message too).
  bool openDump(const QString& path, const QString& config = {}, const QString& token_ids = {}, QString* error = nullptr);
  void showSequence(int64_t index);
  void computeStats();   // over the whole dump, on a thread; statsReady() when done
  void cancelStats();
  bool statsRunning() const { return running_; }
  const RoutingDump* dump() const { return dump_.get(); }
  QString statsText() const;

signals:
  void statsReady(bool ok);

private:
  ui::TraceModel* traces_;
  std::shared_ptr<const RoutingDump> dump_;
  QString path_;
  QLabel* title_;
  QSpinBox* sequence_;
  QLabel* label_;
  QPushButton* stats_button_;
  QPushButton* cancel_button_;
  QProgressBar* progress_;
  QTextBrowser* stats_;
  QLabel* error_;
  QPointer<QThread> worker_;  // deletes itself when finished
  bool running_ = false;
  std::shared_ptr<std::atomic<bool>> cancel_;
};

}  // namespace moescope::desktop
