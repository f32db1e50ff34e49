#pragma once
#include <QStringList>
// A read-only QTextBrowser that shows Markdown at the height of its content (no scroll bar of its
// own: the chat scrolls as a whole), with code in a monospaced font on a tinted background. Raw
// HTML in the text is shown as text; no resource (image, file, URL) is ever loaded, and only a
// click on a web link opens it, in the system browser (tests/test_chat_text.cpp).
#include <QTextBrowser>

namespace moescope::ui {

class MarkdownBrowser : public QTextBrowser {
  Q_OBJECT
public:
  explicit MarkdownBrowser(QWidget* parent = nullptr);
  void setMarkdownText(const QString& markdown);
  const QString& markdownText() const { return markdown_; }
  QSize sizeHint() const override;
  QSize minimumSizeHint() const override;
  QVariant loadResource(int type, const QUrl& name) override;

protected:
  void resizeEvent(QResizeEvent* e) override;

private:
  void fitHeight();
  void styleCode();
  QString markdown_;
  bool updating_ = false;  // inside setMarkdownText: no refit per change
};

// The contents of the fenced code blocks (``` or ~~~) of a Markdown text, exactly as written
// (newlines and indentation kept, the fence lines and info string left out); an unclosed fence
// runs to the end. What a code block's copy button copies.
QStringList code_blocks(const QString& markdown);

}  // namespace moescope::ui
