#include "ui/chat_panel.h"

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QTimer>
#include <QVBoxLayout>

#include "ui/message_widget.h"
#include "ui/notice_bar.h"

namespace moescope::ui {

ChatPanel::ChatPanel(QWidget* parent) : QWidget(parent) {
  auto* col = new QVBoxLayout(this);
  col->setContentsMargins(12, 10, 12, 10);
  col->setSpacing(8);

  notices_ = new NoticeBar(this);
  col->addWidget(notices_);

  scroll_ = new QScrollArea(this);
  scroll_->setWidgetResizable(true);
  scroll_->setFrameShape(QFrame::NoFrame);
  scroll_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  list_ = new QWidget(scroll_);
  list_->setObjectName(QStringLiteral("messageList"));
  list_layout_ = new QVBoxLayout(list_);
  list_layout_->setContentsMargins(4, 4, 8, 4);
  list_layout_->setSpacing(10);
  // The empty state: what to do, and (for models that ship them) example prompts to click.
  empty_box_ = new QWidget(list_);
  auto* empty_col = new QVBoxLayout(empty_box_);
  empty_ = new QLabel(empty_box_);
  empty_col->addStretch(1);
  empty_col->addWidget(empty_);
  examples_ = new QWidget(empty_box_);
  examples_->setObjectName(QStringLiteral("examplePrompts"));
  examples_layout_ = new QVBoxLayout(examples_);
  examples_layout_->setAlignment(Qt::AlignHCenter);
  examples_->setVisible(false);
  empty_col->addWidget(examples_);
  empty_col->addStretch(1);
  empty_->setAlignment(Qt::AlignCenter);
  empty_->setWordWrap(true);
  empty_->setStyleSheet(QStringLiteral("color:#6A737D; font-size:15px;"));
  empty_->setText(tr("<p style='font-size:20px; color:#24292E;'>Start a conversation</p>"
                     "<p>Type a message below. While the model answers, its experts' routing "
                     "appears in the views (menu <b>Views</b>).</p>"));
  empty_box_->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Expanding);
  list_layout_->addWidget(empty_box_, 1);  // message rows go between it and the stretch
  list_layout_->addStretch(1);
  scroll_->setWidget(list_);
  col->addWidget(scroll_, 1);
  connect(scroll_->verticalScrollBar(), &QScrollBar::valueChanged, this, [this](int v) {
    follow_ = v >= scroll_->verticalScrollBar()->maximum() - 24;
  });
  connect(scroll_->verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
    if (follow_) scroll_->verticalScrollBar()->setValue(max);
  });

  edit_banner_ = new QWidget(this);
  auto* eb = new QHBoxLayout(edit_banner_);
  eb->setContentsMargins(0, 0, 0, 0);
  auto* eb_text = new QLabel(tr("Editing an earlier message: sending replaces it and every turn after it."), edit_banner_);
  eb_text->setStyleSheet(QStringLiteral("color:#5C4300;"));
  eb_text->setObjectName(QStringLiteral("editNotice"));
  eb_text->setWordWrap(true);  // never clipped in a narrow chat
  auto* eb_cancel = new QPushButton(tr("Cancel edit"), edit_banner_);
  connect(eb_cancel, &QPushButton::clicked, this, [this] { setEditing(-1, {}); });
  eb->addWidget(eb_text, 1);
  eb->addWidget(eb_cancel);
  edit_banner_->setVisible(false);
  col->addWidget(edit_banner_);

  auto* input_row = new QHBoxLayout;
  input_row->setSpacing(8);
  input_ = new QPlainTextEdit(this);
  input_->setObjectName(QStringLiteral("chatInput"));
  input_->setPlaceholderText(tr("Message the model (Shift+Enter: new line)"));
  input_->setFixedHeight(76);
  input_->setStyleSheet(QStringLiteral("QPlainTextEdit { border:1px solid #D0D7DE; border-radius:8px; padding:6px; background:white; }"));
  input_->installEventFilter(this);
  input_row->addWidget(input_, 1);
  auto* buttons = new QVBoxLayout;
  buttons->setSpacing(6);
  send_ = new QPushButton(tr("Send"), this);
  send_->setObjectName(QStringLiteral("sendButton"));
  send_->setDefault(true);
  send_->setMinimumWidth(96);
  stop_ = new QPushButton(tr("Stop"), this);
  stop_->setObjectName(QStringLiteral("stopButton"));
  stop_->setMinimumWidth(96);
  stop_->setStyleSheet(QStringLiteral("QPushButton { color:#9A1C1C; font-weight:600; }"));
  settings_ = new QPushButton(tr("Chat settings…"), this);
  settings_->setToolTip(tr("System prompt and sampling for this conversation"));
  buttons->addWidget(send_);
  buttons->addWidget(stop_);
  buttons->addStretch(1);
  input_row->addLayout(buttons);
  col->addLayout(input_row);

  auto* footer = new QHBoxLayout;
  model_hint_ = new QLabel(this);
  model_hint_->setStyleSheet(QStringLiteral("color:#6A737D;"));
  model_hint_->setWordWrap(true);
  footer->addWidget(model_hint_, 1);
  footer->addWidget(settings_);
  col->addLayout(footer);

  connect(send_, &QPushButton::clicked, this, &ChatPanel::send);
  connect(stop_, &QPushButton::clicked, this, &ChatPanel::stopRequested);
  connect(settings_, &QPushButton::clicked, this, &ChatPanel::settingsRequested);
  updateButtons();
}

bool ChatPanel::eventFilter(QObject* o, QEvent* e) {
  if (o == input_ && e->type() == QEvent::KeyPress) {
    auto* k = static_cast<QKeyEvent*>(e);
    if ((k->key() == Qt::Key_Return || k->key() == Qt::Key_Enter) && !(k->modifiers() & Qt::ShiftModifier)) {
      send();
      return true;
    }
  }
  return QWidget::eventFilter(o, e);
}

void ChatPanel::send() {
  const QString text = input_->toPlainText().trimmed();
  if (text.isEmpty() || generating_ || !ready_) return;
  const int index = editing_;
  input_->clear();
  setEditing(-1, {});
  follow_ = true;
  emit sendRequested(text, index);
}

void ChatPanel::clearMessages() {
  for (MessageWidget* w : widgets_) w->deleteLater();
  widgets_.clear();
  streaming_ = nullptr;
}

MessageWidget* ChatPanel::addMessage(int index, const Message& m) {
  auto* w = new MessageWidget(index, m, list_);
  connect(w, &MessageWidget::editRequested, this, [this](int i) {
    for (MessageWidget* mw : widgets_)
      if (mw->index() == i) setEditing(i, mw->rawContent());
  });
  connect(w, &MessageWidget::regenerateRequested, this, &ChatPanel::regenerateRequested);
  // Before the trailing stretch; user turns lean right, answers use the full width.
  auto* row = new QHBoxLayout;
  if (m.role == QLatin1String("user")) row->addSpacing(80);
  row->addWidget(w, 1);
  list_layout_->insertLayout(list_layout_->count() - 1, row);
  widgets_.push_back(w);
  empty_box_->setVisible(false);
  return w;
}

void ChatPanel::setConversation(const Conversation& c) {
  clearMessages();
  // Remove the rows (layouts) left from the previous conversation; keep the stretches and label.
  while (list_layout_->count() > 2) {
    QLayoutItem* item = list_layout_->takeAt(1);
    delete item;
  }
  n_messages_ = int(c.messages.size());
  for (int i = 0; i < n_messages_; ++i) {
    const Message& m = c.messages[size_t(i)];
    MessageWidget* w = addMessage(i, m);
    if (m.role == QLatin1String("assistant") && m.tokens > 0) {
      QString line = tr("%1 tokens · %2 tokens/s").arg(m.tokens).arg(m.tokens_per_second, 0, 'f', 1);
      if (m.stop_reason == QLatin1String("cancelled")) line += tr(" · stopped");
      w->setStats(line);
    }
  }
  empty_box_->setVisible(widgets_.empty());
  follow_ = true;
  updateButtons();
  scrollToBottomSoon();
}

void ChatPanel::setStreamingAnswer(const QString& raw) {
  if (!streaming_) {
    Message m;
    m.role = QStringLiteral("assistant");
    streaming_ = addMessage(n_messages_, m);
  }
  streaming_->setContent(raw, true);
}

MessageWidget* ChatPanel::lastAnswer() const {
  for (auto it = widgets_.rbegin(); it != widgets_.rend(); ++it)
    if (!(*it)->isUser()) return *it;
  return nullptr;
}

void ChatPanel::setGenerating(bool on) {
  generating_ = on;
  if (!on && streaming_) {
    streaming_->setContent(streaming_->rawContent(), false);
    streaming_ = nullptr;
  }
  updateButtons();
}

void ChatPanel::setModelReady(bool ready, const QString& why_not) {
  ready_ = ready;
  empty_->setText(ready ? tr("<p style='font-size:20px; color:#24292E;'>Start a conversation</p>"
                             "<p>Type a message below. While the model answers, its experts' routing "
                             "appears in the views (menu <b>Views</b>).</p>")
                        : tr("<p style='font-size:20px; color:#24292E;'>No model is loaded</p>"
                             "<p>Open a model directory with <b>File ▸ Open model…</b> "
                             "(a Hugging Face checkpoint: config.json, *.safetensors, tokenizer.json).</p>"));
  model_hint_->setText(why_not);
  updateButtons();
}

void ChatPanel::setExamples(const QString& intro, const QStringList& prompts) {
  while (QLayoutItem* item = examples_layout_->takeAt(0)) {
    delete item->widget();
    delete item;
  }
  examples_->setVisible(!prompts.isEmpty());
  if (prompts.isEmpty()) return;
  auto* text = new QLabel(intro, examples_);
  text->setWordWrap(true);
  text->setAlignment(Qt::AlignCenter);
  text->setStyleSheet(QStringLiteral("color:#586069;"));
  examples_layout_->addWidget(text);
  text->show();
  for (const QString& p : prompts) {
    auto* b = new QPushButton(p, examples_);
    b->setObjectName(QStringLiteral("examplePrompt"));
    b->setCursor(Qt::PointingHandCursor);
    b->setStyleSheet(QStringLiteral("QPushButton { border:1px solid #D0D7DE; border-radius:12px; padding:4px 12px; "
                                    "background:#F6F8FA; color:#24292E; } QPushButton:hover { background:#EAEEF2; }"));
    connect(b, &QPushButton::clicked, this, [this, p] {
      if (ready_) emit sendRequested(p, -1);
    });
    examples_layout_->addWidget(b, 0, Qt::AlignHCenter);
    b->show();  // added to a panel that may already be on screen
  }
}

void ChatPanel::setLoading(const QString& model_name) {
  ready_ = false;
  model_hint_->setText(tr("Loading %1…").arg(model_name));
  empty_->setText(tr("<p style='font-size:20px; color:#24292E;'>Loading %1…</p>"
                     "<p>The progress is in the status bar below.</p>").arg(model_name.toHtmlEscaped()));
  updateButtons();
}

void ChatPanel::setEditing(int index, const QString& text) {
  editing_ = index;
  edit_banner_->setVisible(index >= 0);
  if (index >= 0) {
    input_->setPlainText(text);
    input_->setFocus();
  }
}

void ChatPanel::updateButtons() {
  // One button place: Send while idle, Stop while the model answers.
  send_->setEnabled(ready_ && !generating_);
  send_->setVisible(!generating_);
  stop_->setEnabled(generating_);
  stop_->setVisible(generating_);
  const bool last_is_answer = !widgets_.empty() && !widgets_.back()->isUser();
  for (MessageWidget* w : widgets_) {
    w->setActionsEnabled(ready_ && !generating_);
    w->setCanRegenerate(w == widgets_.back() && last_is_answer && !generating_);
  }
}

void ChatPanel::scrollToBottomSoon() {
  QTimer::singleShot(0, this, [this] { scroll_->verticalScrollBar()->setValue(scroll_->verticalScrollBar()->maximum()); });
}

}  // namespace moescope::ui
