#pragma once
// File ▸ Connect to a server: the remote backend's settings (base URL, API key, model, the model's
// config for its layer and expert counts, timeout), with the server's model list fetched through
// the engine host (GET /v1/models on its worker thread) and a plain warning where the key is kept.
#include <QDialog>

#include "ui/engine_requests.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace moescope::ui {

class EngineHost;

class ServerDialog : public QDialog {
  Q_OBJECT
public:
  // settings_file: where a remembered key is written (said in the warning).
  ServerDialog(EngineHost* host, const RemoteServer& initial, bool remember_key, const QString& settings_file,
               QWidget* parent = nullptr);
  RemoteServer server() const;
  bool rememberKey() const;
  void listModels();  // also the "List models" button

private:
  EngineHost* host_;
  quint64 listing_ = 0;
  QLineEdit* url_;
  QLineEdit* key_;
  QCheckBox* remember_;
  QComboBox* model_;
  QPushButton* list_;
  QComboBox* config_;
  QSpinBox* timeout_;
  QLabel* status_;
};

}  // namespace moescope::ui
