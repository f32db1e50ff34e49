#pragma once
// The chat in the centre of the window: notices, the messages of one conversation (the last answer
// may be streaming), and the input with Send / Stop. It shows what it is given and reports what
// the user asks for; the main window owns the conversation and talks to the engine.
#include <QStringList>
#include <QWidget>
#include <vector>

#include "ui/conversation.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QScrollArea;
class QVBoxLayout;

namespace moescope::ui {

class MessageWidget;
class NoticeBar;

class ChatPanel : public QWidget {
  Q_OBJECT
public:
  explicit ChatPanel(QWidget* parent = nullptr);

  void setConversation(const Conversation& c);  // rebuilds the message list
  // The answer being written: shown as the last message (created on first call).
  void setStreamingAnswer(const QString& raw);
  void setGenerating(bool on);
  void setModelReady(bool ready, const QString& why_not = {});
  // Example prompts shown in the empty conversation, each a button that sends it (none: hidden),
  // under one sentence on what the model is.
  void setExamples(const QString& intro, const QStringList& prompts);
  void setLoading(const QString& model_name);  // not ready until setModelReady(true)
  void setEditing(int index, const QString& text);  // -1: not editing
  int editingIndex() const { return editing_; }

  NoticeBar* notices() const { return notices_; }
  QPlainTextEdit* input() const { return input_; }
  QPushButton* sendButton() const { return send_; }
  QPushButton* stopButton() const { return stop_; }
  const std::vector<MessageWidget*>& messageWidgets() const { return widgets_; }
  MessageWidget* lastAnswer() const;

signals:
  // editIndex >= 0: replace message editIndex and everything after it with `text`.
  void sendRequested(const QString& text, int editIndex);
  void stopRequested();
  void regenerateRequested();
  void settingsRequested();

protected:
  bool eventFilter(QObject* o, QEvent* e) override;

private:
  void send();
  void clearMessages();
  MessageWidget* addMessage(int index, const Message& m);
  void scrollToBottomSoon();
  void updateButtons();

  NoticeBar* notices_;
  QScrollArea* scroll_;
  QWidget* list_;
  QVBoxLayout* list_layout_;
  QWidget* empty_box_;  // shown while the conversation has no message
  QLabel* empty_;
  QWidget* examples_;
  QVBoxLayout* examples_layout_;
  QWidget* edit_banner_;
  QPlainTextEdit* input_;
  QPushButton* send_;
  QPushButton* stop_;
  QPushButton* settings_;
  QLabel* model_hint_;
  std::vector<MessageWidget*> widgets_;
  MessageWidget* streaming_ = nullptr;
  bool generating_ = false;
  bool ready_ = false;
  bool follow_ = true;  // keep the view at the bottom while the answer grows
  int editing_ = -1;
  int n_messages_ = 0;
};

}  // namespace moescope::ui
