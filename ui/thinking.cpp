#include "ui/thinking.h"

#include <QRegularExpression>

namespace moescope::ui {

ThinkingSplit split_thinking(const QString& text) {
  static const QString open = QStringLiteral("<think>");
  static const QString close = QStringLiteral("</think>");
  ThinkingSplit s;
  const QString& t = text;
  qsizetype start = -1;
  const qsizetype first = t.indexOf(QRegularExpression(QStringLiteral("\\S")));
  if (first >= 0 && t.mid(first, open.size()) == open) start = first + open.size();
  const qsizetype end = t.indexOf(close, start < 0 ? 0 : start);
  if (start < 0 && end < 0) {
    s.answer = t;
    return s;
  }
  // DeepSeek-R1's template opens <think> in the prompt, so the answer may hold only the closing tag.
  if (start < 0) start = 0;
  s.has_thinking = true;
  if (end < 0) {
    s.thinking = t.mid(start).trimmed();
    return s;
  }
  s.thinking = t.mid(start, end - start).trimmed();
  s.answer = t.mid(end + close.size());
  while (!s.answer.isEmpty() && s.answer.front().isSpace()) s.answer.remove(0, 1);
  s.thinking_done = true;
  return s;
}

}  // namespace moescope::ui
