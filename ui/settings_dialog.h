#pragma once
// Per-conversation settings: the system prompt and the sampler (temperature, top-p, top-k, min-p,
// repetition penalty, max tokens, seed), with a reset to the checkpoint's defaults.
#include <QDialog>

#include "ui/conversation.h"

class QCheckBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

namespace moescope::ui {

class ConversationSettingsDialog : public QDialog {
  Q_OBJECT
public:
  ConversationSettingsDialog(const QString& system_prompt, const SamplingSettings& current,
                             const SamplingSettings& model_defaults, QWidget* parent = nullptr);
  QString systemPrompt() const;
  SamplingSettings sampling() const;

private:
  void show_values(const SamplingSettings& s);
  SamplingSettings defaults_;
  QPlainTextEdit* system_;
  QDoubleSpinBox* temperature_;
  QDoubleSpinBox* top_p_;
  QSpinBox* top_k_;
  QDoubleSpinBox* min_p_;
  QDoubleSpinBox* repetition_;
  QSpinBox* max_tokens_;
  QSpinBox* seed_;
  QCheckBox* random_seed_;
};

}  // namespace moescope::ui
