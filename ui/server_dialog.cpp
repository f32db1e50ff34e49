#include "ui/server_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "moescope/resources.h"
#include "ui/engine_host.h"

namespace moescope::ui {

ServerDialog::ServerDialog(EngineHost* host, const RemoteServer& initial, bool remember_key, const QString& settings_file,
                           QWidget* parent)
    : QDialog(parent), host_(host) {
  setWindowTitle(tr("Connect to a server"));
  setObjectName(QStringLiteral("serverDialog"));
  auto* intro = new QLabel(
      tr("Chat with a model served by <b>vLLM</b>, <b>SGLang</b> or <b>moescope-cli serve</b> and watch its routing. "
         "The server must return the routed experts: vLLM and SGLang need <code>--enable-return-routed-experts</code>."),
      this);
  intro->setWordWrap(true);

  url_ = new QLineEdit(initial.url, this);
  url_->setObjectName(QStringLiteral("serverUrl"));
  url_->setPlaceholderText(QStringLiteral("http://127.0.0.1:8000"));
  key_ = new QLineEdit(initial.api_key, this);
  key_->setObjectName(QStringLiteral("serverKey"));
  key_->setEchoMode(QLineEdit::Password);
  key_->setPlaceholderText(tr("none"));
  remember_ = new QCheckBox(tr("Remember the key on this computer"), this);
  remember_->setObjectName(QStringLiteral("rememberKey"));
  remember_->setChecked(remember_key);
  auto* warning = new QLabel(tr("A remembered key is stored <b>unencrypted</b> in %1. It is never written to "
                                "conversation files or logs.")
                                 .arg(settings_file.toHtmlEscaped()),
                             this);
  warning->setWordWrap(true);
  warning->setStyleSheet(QStringLiteral("color:#8A6D3B;"));

  model_ = new QComboBox(this);
  model_->setObjectName(QStringLiteral("serverModel"));
  model_->setEditable(true);
  model_->setMinimumContentsLength(24);
  if (!initial.model.isEmpty()) model_->addItem(initial.model);
  model_->lineEdit()->setPlaceholderText(tr("the server's first model"));
  list_ = new QPushButton(tr("List models"), this);
  list_->setObjectName(QStringLiteral("listModels"));
  auto* model_row = new QHBoxLayout;
  model_row->addWidget(model_, 1);
  model_row->addWidget(list_);

  config_ = new QComboBox(this);
  config_->setObjectName(QStringLiteral("serverConfig"));
  config_->setEditable(true);
  config_->addItem(QString());
  for (const std::string& name : preset_names()) config_->addItem(QString::fromStdString(name));
  config_->setCurrentText(initial.config);
  config_->lineEdit()->setPlaceholderText(tr("from the server, else from the responses"));
  config_->setToolTip(tr("The model's config.json (a file, a checkpoint folder or a preset) for its layers and experts. "
                         "vLLM and SGLang do not send it; without it moescope infers the counts from the routing."));
  auto* browse = new QPushButton(tr("Browse…"), this);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("The model's config.json"), QString(), tr("config.json (config.json *.json)"));
    if (!f.isEmpty()) config_->setCurrentText(f);
  });
  auto* config_row = new QHBoxLayout;
  config_row->addWidget(config_, 1);
  config_row->addWidget(browse);

  timeout_ = new QSpinBox(this);
  timeout_->setObjectName(QStringLiteral("serverTimeout"));
  timeout_->setRange(1, 3600);
  timeout_->setSuffix(tr(" s"));
  timeout_->setValue(std::max(1, initial.timeout_ms / 1000));
  timeout_->setToolTip(tr("A request ends when the server sends nothing for this long"));

  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("serverStatus"));
  status_->setWordWrap(true);

  auto* form = new QFormLayout;
  form->addRow(tr("Base URL:"), url_);
  form->addRow(tr("API key:"), key_);
  form->addRow(QString(), remember_);
  form->addRow(QString(), warning);
  form->addRow(tr("Model:"), model_row);
  form->addRow(tr("Model config:"), config_row);
  form->addRow(tr("Timeout:"), timeout_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  buttons->button(QDialogButtonBox::Ok)->setText(tr("Connect"));
  connect(buttons, &QDialogButtonBox::accepted, this, [this] {
    if (url_->text().trimmed().isEmpty()) {
      status_->setText(tr("Give the server's base URL, e.g. http://127.0.0.1:8000"));
      return;
    }
    accept();
  });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(list_, &QPushButton::clicked, this, &ServerDialog::listModels);
  connect(host_, &EngineHost::modelsListed, this, [this](const ModelListOutcome& o) {
    if (o.id != listing_) return;
    listing_ = 0;
    list_->setEnabled(true);
    if (!o.error.isEmpty()) {
      status_->setText(o.error);
      return;
    }
    const QString keep = model_->currentText();
    model_->clear();
    model_->addItems(o.models);
    if (!keep.isEmpty() && o.models.contains(keep)) model_->setCurrentText(keep);
    status_->setText(o.models.isEmpty() ? tr("The server lists no models.")
                                        : tr("%n model(s) on the server.", nullptr, int(o.models.size())));
  });

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(intro);
  layout->addLayout(form);
  layout->addWidget(status_);
  layout->addWidget(buttons);
  resize(560, sizeHint().height());
}

RemoteServer ServerDialog::server() const {
  RemoteServer s;
  s.url = url_->text().trimmed();
  s.api_key = key_->text();
  s.model = model_->currentText().trimmed();
  s.config = config_->currentText().trimmed();
  s.timeout_ms = timeout_->value() * 1000;
  return s;
}

bool ServerDialog::rememberKey() const { return remember_->isChecked(); }

void ServerDialog::listModels() {
  if (url_->text().trimmed().isEmpty()) {
    status_->setText(tr("Give the server's base URL first."));
    return;
  }
  status_->setText(tr("Asking the server for its models…"));
  list_->setEnabled(false);
  listing_ = host_->listModels(server());
}

}  // namespace moescope::ui
