#include "ui/notice_bar.h"

#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
#include <QPointer>
#include <QPushButton>
#include <QToolButton>
#include <QVBoxLayout>

namespace moescope::ui {

NoticeBar::NoticeBar(QWidget* parent) : QWidget(parent), layout_(new QVBoxLayout(this)) {
  layout_->setContentsMargins(0, 0, 0, 0);
  layout_->setSpacing(6);
  setVisible(false);
}

void NoticeBar::show_notice(const QString& id, Level level, const QString& text, const QList<Action>& actions) {
  remove_notice(id);
  static const char* styles[] = {
      "background:#EAF2FD; border:1px solid #B6CFF2; border-radius:6px; color:#1B3A63;",
      "background:#FFF6E0; border:1px solid #EFD28A; border-radius:6px; color:#5C4300;",
      "background:#FDECEC; border:1px solid #EDB3B3; border-radius:6px; color:#6B1A1A;"};
  auto* box = new QFrame(this);
  box->setObjectName(QStringLiteral("notice-") + id);
  box->setStyleSheet(QStringLiteral("QFrame#%1 { %2 } QLabel { border:none; background:transparent; }")
                         .arg(box->objectName(), QString::fromLatin1(styles[int(level)])));
  // Text and the close button on top, the actions under the text: the text keeps the width
  // even when docked views leave the chat narrow.
  auto* col = new QVBoxLayout(box);
  col->setContentsMargins(10, 6, 6, 6);
  col->setSpacing(4);
  auto* row = new QHBoxLayout;
  auto* label = new QLabel(text, box);
  label->setObjectName(QStringLiteral("text"));
  label->setWordWrap(true);
  label->setTextInteractionFlags(Qt::TextSelectableByMouse);
  row->addWidget(label, 1);
  auto* close = new QToolButton(box);
  close->setText(QStringLiteral("✕"));
  close->setToolTip(tr("Dismiss"));
  close->setAutoRaise(true);
  connect(close, &QToolButton::clicked, this, [this, id] { remove_notice(id); });
  row->addWidget(close, 0, Qt::AlignTop);
  col->addLayout(row);
  if (!actions.isEmpty()) {
    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    for (const Action& a : actions) {
      auto* b = new QPushButton(a.label, box);
      b->setObjectName(QStringLiteral("action-") + a.label);
      connect(b, &QPushButton::clicked, this, [this, id, run = a.run] {
        remove_notice(id);
        if (run) run();
      });
      buttons->addWidget(b);
    }
    buttons->addSpacing(24);
    col->addLayout(buttons);
  }
  layout_->addWidget(box);
  notices_.insert(id, box);
  setVisible(true);
}

void NoticeBar::remove_notice(const QString& id) {
  if (QWidget* w = notices_.take(id)) {
    w->hide();
    w->deleteLater();
  }
  setVisible(!notices_.isEmpty());
}

QString NoticeBar::notice_text(const QString& id) const {
  QWidget* w = notices_.value(id);
  if (!w) return {};
  auto* l = w->findChild<QLabel*>(QStringLiteral("text"));
  return l ? l->text() : QString();
}

}  // namespace moescope::ui
