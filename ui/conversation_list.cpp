#include "ui/conversation_list.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace moescope::ui {

ConversationList::ConversationList(QWidget* parent) : QWidget(parent) {
  auto* col = new QVBoxLayout(this);
  col->setContentsMargins(10, 10, 6, 10);
  col->setSpacing(8);
  new_ = new QPushButton(tr("+  New chat"), this);
  new_->setObjectName(QStringLiteral("newChatButton"));
  new_->setMinimumHeight(30);
  col->addWidget(new_);
  search_ = new QLineEdit(this);
  search_->setObjectName(QStringLiteral("searchField"));
  search_->setPlaceholderText(tr("Search conversations"));
  search_->setClearButtonEnabled(true);
  col->addWidget(search_);
  list_ = new QListWidget(this);
  list_->setObjectName(QStringLiteral("conversationList"));
  list_->setStyleSheet(QStringLiteral(
      "QListWidget { border:none; background:transparent; }"
      "QListWidget::item { padding:7px 6px; border-radius:6px; }"
      "QListWidget::item:selected { background:#DCE6F7; color:#111; }"));
  list_->setTextElideMode(Qt::ElideRight);
  list_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  col->addWidget(list_, 1);
  auto* row = new QHBoxLayout;
  rename_ = new QPushButton(tr("Rename"), this);
  delete_ = new QPushButton(tr("Delete"), this);
  row->addWidget(rename_);
  row->addWidget(delete_);
  col->addLayout(row);

  connect(new_, &QPushButton::clicked, this, &ConversationList::newRequested);
  connect(search_, &QLineEdit::textChanged, this, [this] { applyFilter(); });
  connect(list_, &QListWidget::currentItemChanged, this, [this](QListWidgetItem* item) {
    if (!updating_ && item) emit currentChanged(item->data(Qt::UserRole).toString());
  });
  connect(list_, &QListWidget::itemDoubleClicked, this,
          [this](QListWidgetItem* item) { emit renameRequested(item->data(Qt::UserRole).toString()); });
  connect(rename_, &QPushButton::clicked, this, [this] {
    if (!currentId().isEmpty()) emit renameRequested(currentId());
  });
  connect(delete_, &QPushButton::clicked, this, [this] {
    if (!currentId().isEmpty()) emit deleteRequested(currentId());
  });
}

void ConversationList::setConversations(const std::vector<Conversation>& conversations, const QString& current_id) {
  items_ = conversations;
  updating_ = true;
  list_->clear();
  for (const auto& c : items_) {
    auto* item = new QListWidgetItem(c.title, list_);
    item->setData(Qt::UserRole, c.id);
    item->setToolTip(QStringLiteral("%1\n%2").arg(c.title, c.updated.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm"))));
    if (c.id == current_id) list_->setCurrentItem(item);
  }
  updating_ = false;
  applyFilter();
}

void ConversationList::setFilter(const QString& text) { search_->setText(text); }

void ConversationList::applyFilter() {
  const QString needle = search_->text().trimmed();
  for (int i = 0; i < list_->count(); ++i) {
    QListWidgetItem* item = list_->item(i);
    const auto& c = items_[size_t(i)];
    item->setHidden(!c.matches(needle));
  }
}

QString ConversationList::currentId() const {
  QListWidgetItem* item = list_->currentItem();
  return item ? item->data(Qt::UserRole).toString() : QString();
}

int ConversationList::visibleCount() const {
  int n = 0;
  for (int i = 0; i < list_->count(); ++i) n += list_->item(i)->isHidden() ? 0 : 1;
  return n;
}

}  // namespace moescope::ui
