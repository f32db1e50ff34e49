// The chat shows exactly what the model wrote: hostile and tricky answers rendered by the message
// bubble's MarkdownBrowser keep every letter and digit, in order, in the visible text
// (toPlainText; only Markdown syntax may go), raw HTML is shown as text, never interpreted, and
// nothing in an answer makes the view load a file or a URL.
#include <QtTest>

#include <QApplication>
#include <QFile>
#include <QTemporaryDir>

#include "ui/markdown_browser.h"
#include "ui/message_widget.h"
#include "ui/conversation.h"
#include <QSignalSpy>
#include <QToolButton>

using moescope::ui::MarkdownBrowser;
using moescope::ui::Message;
using moescope::ui::MessageWidget;
using moescope::ui::code_blocks;

namespace {

// True when every letter and digit of `answer` appears in `shown`, in the same order.
bool keeps_every_word_character(const QString& answer, const QString& shown, QString* missing) {
  qsizetype at = 0;
  for (qsizetype i = 0; i < answer.size(); ++i) {
    const QChar c = answer[i];
    if (!c.isLetterOrNumber()) continue;
    const qsizetype found = shown.indexOf(c, at);
    if (found < 0) {
      *missing = answer.mid(std::max<qsizetype>(0, i - 20), 40);
      return false;
    }
    at = found + 1;
  }
  return true;
}

}  // namespace

class ChatTextTest : public QObject {
  Q_OBJECT

private slots:
  void hostile_answers_keep_their_text_data() {
    QTest::addColumn<QString>("answer");
    QTest::newRow("html-like tag") << "The answer is <hiOur go> and then more text follows here.";
    QTest::newRow("html elements") << "<b>bold</b> <script>alert(1)</script> <div style=\"display:none\">hidden</div> end";
    QTest::newRow("html comment") << "before <!-- a comment --> after";
    QTest::newRow("unclosed fence") << "Code:\n```\ndef f(a, b):\n    return a + b\n";  // (an info string is syntax)
    QTest::newRow("code block") << "```\nint main() {\n  return 0;\n}\n```\nDone.";
    QTest::newRow("table") << "| a | b |\n|---|---|\n| 1 | 2 |\n| <x> | y |";
    QTest::newRow("rtl and emoji") << "שלום עולם 🙂 مرحبا 👋 done";
    QTest::newRow("long line") << QString("word%1 ").repeated(2000).arg(7);
    QString big;
    for (int i = 0; i < 5000; ++i) big += QString("line %1 <tag%1> text\n").arg(i);
    QTest::newRow("50,000+ characters") << big;
  }
  void hostile_answers_keep_their_text() {
    QFETCH(QString, answer);
    MarkdownBrowser view;
    view.resize(500, 300);
    view.setMarkdownText(answer);
    QString missing;
    QVERIFY2(keeps_every_word_character(answer, view.toPlainText(), &missing), qPrintable("lost near: " + missing));
  }

  // Raw HTML is text: a tag shows as its characters.
  void html_is_shown_as_text() {
    MarkdownBrowser view;
    view.setMarkdownText("a <b>b</b> c");
    QVERIFY2(view.toPlainText().contains("<b>b</b>"), qPrintable(view.toPlainText()));
  }

  // Images and other resources are never loaded, whatever the answer points at.
  void nothing_is_loaded() {
    QTemporaryDir dir;
    const QString file = dir.filePath("secret.png");
    QImage img(4, 4, QImage::Format_RGB32);
    img.fill(Qt::red);
    QVERIFY(img.save(file));
    MarkdownBrowser view;
    view.setMarkdownText("![x](file://" + file + ") and ![y](" + file + ") and ![z](http://127.0.0.1:9/x.png)");
    QCOMPARE(view.loadResource(QTextDocument::ImageResource, QUrl::fromLocalFile(file)), QVariant());
    QCOMPARE(view.loadResource(QTextDocument::ImageResource, QUrl("http://127.0.0.1:9/x.png")), QVariant());
    QVERIFY(!view.openLinks());
  }

  // Code blocks keep their newlines and indentation on screen, and "Copy code" copies them exactly.
  void code_blocks_are_kept_and_copied_data() {
    QTest::addColumn<QString>("answer");
    QTest::addColumn<QStringList>("blocks");
    QTest::newRow("python") << "Here:\n```python\ndef f(a, b):\n    return a + b\n```\nDone."
                            << QStringList{"def f(a, b):\n    return a + b\n"};
    QTest::newRow("two blocks, tilde") << "```\nx = 1\n```\ntext\n~~~~\n\tindented\n  ``` not a close\n~~~~\n"
                                       << QStringList{"x = 1\n", "\tindented\n  ``` not a close\n"};
    QTest::newRow("unclosed") << "Code:\n```\nint main() {\n  return 0;\n}" << QStringList{"int main() {\n  return 0;\n}"};
    QTest::newRow("indented fence") << "  ```\n  a\n    b\n  ```" << QStringList{"a\n  b\n"};
    QTest::newRow("inline only") << "use `x` and ```y``` inline" << QStringList{};
  }
  void code_blocks_are_kept_and_copied() {
    QFETCH(QString, answer);
    QFETCH(QStringList, blocks);
    QCOMPARE(code_blocks(answer), blocks);
    Message m;
    m.role = "assistant";
    m.content = answer;
    MessageWidget w(1, m);
    auto* button = w.findChild<QToolButton*>("copyCodeButton");
    QVERIFY(button);
    QCOMPARE(button->isVisibleTo(&w), !blocks.isEmpty());
    // The bubble shows each block's lines with their indentation (spaces exactly; Qt lays a tab
    // out as a tab stop, so only its text is compared).
    const QString shown = w.findChild<MarkdownBrowser*>("body")->toPlainText();
    for (const QString& b : blocks)
      for (const QString& line : b.split('\n', Qt::SkipEmptyParts))
        QVERIFY2(shown.contains(line.startsWith('\t') ? line.trimmed() : line), qPrintable(line));
    if (blocks.size() == 1) {
      QSignalSpy copied(&w, &MessageWidget::copied);
      button->click();
      QCOMPARE(copied.count(), 1);
      QCOMPARE(copied.at(0).at(0).toString(), blocks.front());
    }
  }
};

QTEST_MAIN(ChatTextTest)
#include "test_chat_text.moc"
