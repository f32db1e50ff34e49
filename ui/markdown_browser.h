#pragma once
// A read-only QTextBrowser that shows Markdown at the height of its content (no scroll bar of its
// own: the chat scrolls as a whole), with code in a monospaced font on a tinted background.
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

protected:
  void resizeEvent(QResizeEvent* e) override;

private:
  void fitHeight();
  void styleCode();
  QString markdown_;
};

}  // namespace moescope::ui
