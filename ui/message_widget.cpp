#include "ui/message_widget.h"

#include <QApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/markdown_browser.h"
#include "ui/thinking.h"

namespace moescope::ui {

namespace {

QToolButton* tool_button(const QString& text, const QString& tip, QWidget* parent) {
  auto* b = new QToolButton(parent);
  b->setText(text);
  b->setToolTip(tip);
  b->setAutoRaise(true);
  b->setCursor(Qt::PointingHandCursor);
  return b;
}

}  // namespace

MessageWidget::MessageWidget(int index, const Message& message, QWidget* parent)
    : QFrame(parent), index_(index), user_(message.role == QLatin1String("user")) {
  setObjectName(user_ ? QStringLiteral("userMessage") : QStringLiteral("assistantMessage"));
  setStyleSheet(user_ ? QStringLiteral("QFrame#userMessage { background:#E8F0FE; border:1px solid #C9DAF8; border-radius:10px; }")
                      : QStringLiteral("QFrame#assistantMessage { background:#FFFFFF; border:1px solid #E1E4E8; border-radius:10px; }"));
  auto* col = new QVBoxLayout(this);
  col->setContentsMargins(14, 8, 14, 10);
  col->setSpacing(4);

  auto* header = new QHBoxLayout;
  auto* who = new QLabel(user_ ? tr("You") : tr("Assistant"), this);
  who->setStyleSheet(QStringLiteral("font-weight:600; color:%1; border:none; background:transparent;")
                         .arg(user_ ? QStringLiteral("#1A56B8") : QStringLiteral("#2E7D32")));
  header->addWidget(who);
  header->addStretch(1);
  copy_ = tool_button(tr("Copy"), tr("Copy this message"), this);
  copy_->setObjectName(QStringLiteral("copyButton"));
  header->addWidget(copy_);
  connect(copy_, &QToolButton::clicked, this, [this] {
    const QString text = answerText();
    QApplication::clipboard()->setText(text);
    emit copied(text);
  });
  if (!user_) {
    // Copies a code block of the answer exactly (one block: at once; several: pick from a menu).
    copy_code_ = tool_button(tr("Copy code"), tr("Copy a code block of this answer exactly as written"), this);
    copy_code_->setObjectName(QStringLiteral("copyCodeButton"));
    copy_code_->setVisible(false);
    header->addWidget(copy_code_);
    connect(copy_code_, &QToolButton::clicked, this, [this] {
      const QStringList blocks = code_blocks(answerText());
      if (blocks.isEmpty()) return;
      auto copy = [this](const QString& code) {
        QApplication::clipboard()->setText(code);
        emit copied(code);
      };
      if (blocks.size() == 1) return copy(blocks.front());
      QMenu menu(this);
      for (int i = 0; i < blocks.size(); ++i) {
        const QString first = blocks[i].section(QLatin1Char('\n'), 0, 0).trimmed().left(40);
        menu.addAction(tr("Block %1: %2").arg(i + 1).arg(first), this, [copy, code = blocks[i]] { copy(code); });
      }
      menu.exec(copy_code_->mapToGlobal(QPoint(0, copy_code_->height())));
    });
  }
  if (user_) {
    edit_ = tool_button(tr("Edit"), tr("Edit this message and send it again (later turns are replaced)"), this);
    edit_->setObjectName(QStringLiteral("editButton"));
    header->addWidget(edit_);
    connect(edit_, &QToolButton::clicked, this, [this] { emit editRequested(index_); });
  } else {
    regenerate_ = tool_button(tr("Regenerate"), tr("Answer this again"), this);
    regenerate_->setObjectName(QStringLiteral("regenerateButton"));
    regenerate_->setVisible(false);
    header->addWidget(regenerate_);
    connect(regenerate_, &QToolButton::clicked, this, &MessageWidget::regenerateRequested);
  }
  col->addLayout(header);

  thinking_toggle_ = new QToolButton(this);
  thinking_toggle_->setObjectName(QStringLiteral("thinkingToggle"));
  thinking_toggle_->setCheckable(true);
  thinking_toggle_->setAutoRaise(true);
  thinking_toggle_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  thinking_toggle_->setStyleSheet(QStringLiteral("QToolButton { color:#6A737D; border:none; }"));
  thinking_toggle_->setVisible(false);
  col->addWidget(thinking_toggle_, 0, Qt::AlignLeft);
  thinking_ = new MarkdownBrowser(this);
  thinking_->setStyleSheet(QStringLiteral("QTextBrowser { background:transparent; color:#586069; border-left:3px solid #D0D7DE; padding-left:6px; }"));
  thinking_->setVisible(false);
  col->addWidget(thinking_);
  connect(thinking_toggle_, &QToolButton::clicked, this, [this](bool on) {
    thinking_touched_ = true;
    setThinkingExpanded(on);
  });

  body_ = new MarkdownBrowser(this);
  body_->setObjectName(QStringLiteral("body"));
  col->addWidget(body_);
  stats_ = new QLabel(this);
  stats_->setStyleSheet(QStringLiteral("color:#8A9199; font-size:11px; border:none; background:transparent;"));
  stats_->setVisible(false);
  col->addWidget(stats_);
  setContent(message.content, false);
}

void MessageWidget::setContent(const QString& raw, bool streaming) {
  raw_ = raw;
  if (user_) {
    // The user's text is shown as typed (Markdown characters are theirs, not formatting).
    body_->setPlainText(raw);
    return;
  }
  const ThinkingSplit t = split_thinking(raw);
  thinking_toggle_->setVisible(t.has_thinking);
  if (t.has_thinking) {
    thinking_->setMarkdownText(t.thinking);
    // Open while the model thinks, collapsed once the answer starts (unless the user chose).
    if (!thinking_touched_ && (!thinking_was_done_ || !t.thinking_done))
      setThinkingExpanded(streaming && !t.thinking_done);
    thinking_was_done_ = t.thinking_done;
  }
  QString shown = t.answer;
  if (streaming && !t.has_thinking) shown += QStringLiteral(" ▍");
  if (streaming && t.has_thinking && t.thinking_done) shown += QStringLiteral(" ▍");
  body_->setVisible(!shown.isEmpty() || !t.has_thinking);
  body_->setMarkdownText(shown);
  copy_->setEnabled(!streaming);
  copy_code_->setVisible(!streaming && !code_blocks(t.answer).isEmpty());
}

void MessageWidget::setThinkingExpanded(bool on) {
  thinking_toggle_->setChecked(on);
  thinking_toggle_->setText(on ? tr("▾ Thinking") : tr("▸ Thinking (click to show)"));
  thinking_->setVisible(on);
}

bool MessageWidget::thinkingExpanded() const { return thinking_->isVisibleTo(this); }
bool MessageWidget::hasThinking() const { return thinking_toggle_->isVisibleTo(this); }

QString MessageWidget::answerText() const {
  if (user_) return raw_;
  return split_thinking(raw_).answer;
}

void MessageWidget::setStats(const QString& line) {
  stats_->setText(line);
  stats_->setVisible(!line.isEmpty());
}

void MessageWidget::setCanRegenerate(bool on) {
  if (regenerate_) regenerate_->setVisible(on);
}

void MessageWidget::setActionsEnabled(bool on) {
  if (edit_) edit_->setEnabled(on);
  if (regenerate_) regenerate_->setEnabled(on);
}

}  // namespace moescope::ui
