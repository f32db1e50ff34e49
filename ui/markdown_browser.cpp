#include "ui/markdown_browser.h"

#include <QDesktopServices>
#include <QFontDatabase>
#include <cmath>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextCursor>

namespace moescope::ui {

MarkdownBrowser::MarkdownBrowser(QWidget* parent) : QTextBrowser(parent) {
  // Links open only when the user clicks one, and only web links, in the system browser: the view
  // itself never follows a link a model wrote (setOpenLinks) nor loads a resource (loadResource).
  setOpenLinks(false);
  connect(this, &QTextBrowser::anchorClicked, this, [](const QUrl& url) {
    if (url.scheme() == QLatin1String("http") || url.scheme() == QLatin1String("https")) QDesktopServices::openUrl(url);
  });
  setFrameShape(QFrame::NoFrame);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
  setTextInteractionFlags(Qt::TextBrowserInteraction | Qt::TextSelectableByKeyboard);
  viewport()->setAutoFillBackground(false);
  setStyleSheet(QStringLiteral("QTextBrowser { background: transparent; }"));
  document()->setDocumentMargin(2);
  // Refit on edits from outside; setMarkdownText fits once at the end (the importer and the code
  // styling change the document block by block, and a fit per change lays out the whole document
  // each time: minutes for a 5,000-line answer).
  connect(document(), &QTextDocument::contentsChanged, this, [this] {
    if (!updating_) fitHeight();
  });
}

void MarkdownBrowser::setMarkdownText(const QString& markdown) {
  if (markdown == markdown_) return;
  markdown_ = markdown;
  updating_ = true;
  // Model text is Markdown without raw HTML: a "<tag>" in an answer is shown as its characters,
  // never interpreted (Qt's default dialect would hide it and whatever follows it).
  document()->setMarkdown(markdown, QTextDocument::MarkdownFeatures(QTextDocument::MarkdownDialectGitHub |
                                                                    QTextDocument::MarkdownNoHTML));
  styleCode();
  updating_ = false;
  fitHeight();
}

// Qt's Markdown reader marks code with fixed-pitch formats but leaves the font family to the
// platform; give code blocks and inline code a real monospaced font and fenced blocks a tint.
void MarkdownBrowser::styleCode() {
  const QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
  QTextCursor cursor(document());
  for (QTextBlock b = document()->begin(); b.isValid(); b = b.next()) {
    const bool fenced = b.blockFormat().hasProperty(QTextFormat::BlockCodeFence) ||
                        b.blockFormat().nonBreakableLines();
    if (fenced) {
      QTextBlockFormat bf = b.blockFormat();
      bf.setBackground(QColor(0xF2, 0xF3, 0xF5));
      bf.setLeftMargin(6);
      cursor.setPosition(b.position());
      cursor.setBlockFormat(bf);
    }
    for (auto it = b.begin(); !it.atEnd(); ++it) {
      const QTextFragment frag = it.fragment();
      if (!fenced && !frag.charFormat().fontFixedPitch()) continue;
      QTextCharFormat cf;
      cf.setFontFamilies({mono.family()});
      cf.setFontFixedPitch(true);
      if (!fenced) cf.setBackground(QColor(0xEE, 0xEF, 0xF2));
      cursor.setPosition(frag.position());
      cursor.setPosition(frag.position() + frag.length(), QTextCursor::KeepAnchor);
      cursor.mergeCharFormat(cf);
    }
  }
}

void MarkdownBrowser::fitHeight() {
  const int w = viewport()->width() > 0 ? viewport()->width() : width();
  document()->setTextWidth(w);
  const int h = int(std::ceil(document()->size().height())) + frameWidth() * 2;
  if (h != height()) setFixedHeight(std::max(h, fontMetrics().height() + 4));
  updateGeometry();
}

QVariant MarkdownBrowser::loadResource(int, const QUrl&) { return {}; }  // no images, files or URLs

QSize MarkdownBrowser::sizeHint() const {
  return {QTextBrowser::sizeHint().width(), int(std::ceil(document()->size().height())) + frameWidth() * 2};
}

QSize MarkdownBrowser::minimumSizeHint() const { return {50, fontMetrics().height() + 4}; }

void MarkdownBrowser::resizeEvent(QResizeEvent* e) {
  QTextBrowser::resizeEvent(e);
  fitHeight();
}

QStringList code_blocks(const QString& markdown) {
  QStringList blocks;
  const QStringList lines = markdown.split(QLatin1Char('\n'));
  QChar fence_char;
  int fence_len = 0, fence_indent = 0;
  QString current;
  bool open = false;
  for (const QString& line : lines) {
    int indent = 0;
    while (indent < line.size() && indent < 4 && line[indent] == QLatin1Char(' ')) ++indent;
    const QStringView rest = QStringView(line).mid(indent);
    int run = 0;
    const QChar c = rest.isEmpty() ? QChar() : rest[0];
    if (indent < 4 && (c == QLatin1Char('`') || c == QLatin1Char('~')))
      while (run < rest.size() && rest[run] == c) ++run;
    if (!open) {
      if (run >= 3 && !(c == QLatin1Char('`') && rest.mid(run).contains(QLatin1Char('`')))) {
        open = true;
        fence_char = c;
        fence_len = run;
        fence_indent = indent;
        current.clear();
      }
      continue;
    }
    if (c == fence_char && run >= fence_len && rest.mid(run).trimmed().isEmpty()) {
      blocks << current;
      open = false;
      continue;
    }
    // Content lines lose at most the fence's own indentation (CommonMark).
    int strip = 0;
    while (strip < fence_indent && strip < line.size() && line[strip] == QLatin1Char(' ')) ++strip;
    current += line.mid(strip) + QLatin1Char('\n');
  }
  if (open) {
    if (current.endsWith(QLatin1Char('\n')) && !markdown.endsWith(QLatin1Char('\n'))) current.chop(1);
    blocks << current;
  }
  return blocks;
}

}  // namespace moescope::ui
