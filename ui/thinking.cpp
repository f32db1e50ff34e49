#include "ui/thinking.h"

#include <QRegularExpression>

namespace moescope::ui {

namespace {

// gpt-oss' harmony format: the answer is a run of messages, each
//   [<|start|>assistant]<|channel|>NAME[ to=RECIPIENT][ json]<|message|>BODY(<|end|>|<|return|>|<|call|>)
// (the generation prompt ends in "<|start|>assistant", so the first message has no <|start|>).
// analysis (and commentary, tool calls) is the reasoning; final is the answer.
ThinkingSplit split_harmony(const QString& t) {
  static const QString start = QStringLiteral("<|start|>"), channel = QStringLiteral("<|channel|>"),
                       message = QStringLiteral("<|message|>");
  static const QRegularExpression end_marker(QStringLiteral("<\\|(end|return|call)\\|>"));
  ThinkingSplit s;
  QStringList reasoning;
  qsizetype at = 0;
  while (at < t.size()) {
    const qsizetype c = t.indexOf(channel, at);
    if (c < 0) break;
    const qsizetype m = t.indexOf(message, c);
    // The header is still arriving: nothing of this message to show yet.
    if (m < 0) break;
    // "assistant to=functions.f" before the channel, "commentary json" (or "commentary to=...") after it.
    const QString role = t.mid(at, c - at).trimmed();
    const QString header = t.mid(c + channel.size(), m - c - channel.size()).trimmed();
    const QString name = header.section(QLatin1Char(' '), 0, 0);
    const qsizetype body = m + message.size();
    const QRegularExpressionMatch e = end_marker.match(t, body);
    const qsizetype stop = e.hasMatch() ? e.capturedStart() : t.size();
    const QString text = t.mid(body, stop - body);
    if (name == QLatin1String("final")) {
      s.answer += text;
      s.thinking_done = true;
    } else if (name == QLatin1String("analysis") && !role.contains(QLatin1String("to=")) &&
               !header.contains(QLatin1String("to="))) {
      reasoning << text.trimmed();
    } else {
      // Commentary and tool calls keep their header, so the reasoning shows what was called.
      QString label = (role.section(QLatin1Char(' '), 1) + QLatin1Char(' ') + header).trimmed();
      reasoning << QStringLiteral("[%1] %2").arg(label, text.trimmed());
    }
    if (!e.hasMatch()) break;
    at = e.capturedEnd();
    if (t.mid(at, start.size()) == start) at += start.size();
  }
  reasoning.removeAll(QString());
  s.has_thinking = !reasoning.isEmpty() || !s.thinking_done;
  s.thinking = reasoning.join(QStringLiteral("\n\n"));
  while (!s.answer.isEmpty() && s.answer.front().isSpace()) s.answer.remove(0, 1);
  return s;
}

}  // namespace

ThinkingSplit split_thinking(const QString& text) {
  static const QString open = QStringLiteral("<think>");
  static const QString close = QStringLiteral("</think>");
  static const QString harmony = QStringLiteral("<|channel|>");
  ThinkingSplit s;
  const QString& t = text;
  qsizetype start = -1;
  const qsizetype first = t.indexOf(QRegularExpression(QStringLiteral("\\S")));
  if (first >= 0 && t.mid(first, harmony.size()) == harmony) return split_harmony(t.mid(first));
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
