#include "ui/settings_dialog.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <limits>

namespace moescope::ui {

namespace {
QDoubleSpinBox* real(double lo, double hi, double step, int decimals, QWidget* parent) {
  auto* s = new QDoubleSpinBox(parent);
  s->setRange(lo, hi);
  s->setSingleStep(step);
  s->setDecimals(decimals);
  return s;
}
}  // namespace

ConversationSettingsDialog::ConversationSettingsDialog(const QString& system_prompt, const SamplingSettings& current,
                                                       const SamplingSettings& model_defaults, QWidget* parent)
    : QDialog(parent), defaults_(model_defaults) {
  setWindowTitle(tr("Chat settings"));
  auto* col = new QVBoxLayout(this);
  col->addWidget(new QLabel(tr("System prompt"), this));
  system_ = new QPlainTextEdit(system_prompt, this);
  system_->setPlaceholderText(tr("Optional instructions that come before the conversation"));
  system_->setMinimumHeight(90);
  col->addWidget(system_);

  auto* form = new QFormLayout;
  temperature_ = real(0.0, 5.0, 0.05, 2, this);
  temperature_->setToolTip(tr("0 is greedy: the most likely token every time (deterministic)"));
  top_p_ = real(0.0, 1.0, 0.01, 2, this);
  top_k_ = new QSpinBox(this);
  top_k_->setRange(0, 100000);
  top_k_->setSpecialValueText(tr("off"));
  min_p_ = real(0.0, 1.0, 0.01, 3, this);
  repetition_ = real(0.5, 3.0, 0.05, 2, this);
  max_tokens_ = new QSpinBox(this);
  max_tokens_->setRange(1, 1 << 20);
  seed_ = new QSpinBox(this);
  seed_->setRange(0, std::numeric_limits<int>::max());
  random_seed_ = new QCheckBox(tr("New random seed for every answer"), this);
  connect(random_seed_, &QCheckBox::toggled, seed_, [this](bool on) { seed_->setEnabled(!on); });
  form->addRow(tr("Temperature"), temperature_);
  form->addRow(tr("Top-p"), top_p_);
  form->addRow(tr("Top-k"), top_k_);
  form->addRow(tr("Min-p"), min_p_);
  form->addRow(tr("Repetition penalty"), repetition_);
  form->addRow(tr("Max tokens"), max_tokens_);
  form->addRow(tr("Seed"), seed_);
  form->addRow(QString(), random_seed_);
  col->addLayout(form);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel | QDialogButtonBox::RestoreDefaults, this);
  buttons->button(QDialogButtonBox::RestoreDefaults)->setText(tr("Model defaults"));
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(buttons->button(QDialogButtonBox::RestoreDefaults), &QPushButton::clicked, this, [this] { show_values(defaults_); });
  col->addWidget(buttons);
  show_values(current);
  resize(460, 520);
}

void ConversationSettingsDialog::show_values(const SamplingSettings& s) {
  temperature_->setValue(s.temperature);
  top_p_->setValue(s.top_p);
  top_k_->setValue(s.top_k);
  min_p_->setValue(s.min_p);
  repetition_->setValue(s.repetition_penalty);
  max_tokens_->setValue(s.max_tokens);
  seed_->setValue(int(std::min<quint64>(s.seed, quint64(std::numeric_limits<int>::max()))));
  random_seed_->setChecked(s.random_seed);
  seed_->setEnabled(!s.random_seed);
}

QString ConversationSettingsDialog::systemPrompt() const { return system_->toPlainText(); }

SamplingSettings ConversationSettingsDialog::sampling() const {
  SamplingSettings s;
  s.temperature = temperature_->value();
  s.top_p = top_p_->value();
  s.top_k = top_k_->value();
  s.min_p = min_p_->value();
  s.repetition_penalty = repetition_->value();
  s.max_tokens = max_tokens_->value();
  s.seed = quint64(seed_->value());
  s.random_seed = random_seed_->isChecked();
  return s;
}

}  // namespace moescope::ui
