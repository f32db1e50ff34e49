#include "ui/conversation.h"

#include <spdlog/spdlog.h>

#include <QUuid>
#include <cmath>
#include <limits>

#include "ui/thinking.h"

namespace moescope::ui {

using nlohmann::json;

namespace {

std::string s(const QString& q) { return q.toStdString(); }
QString q(const json& j, const char* key, const QString& fallback = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return QString::fromStdString(it->get<std::string>());
}
QDateTime time_of(const json& j, const char* key) {
  QDateTime t = QDateTime::fromString(q(j, key), Qt::ISODateWithMs);
  return t.isValid() ? t : QDateTime::currentDateTimeUtc();
}

}  // namespace

// An integer field read without undefined behaviour: floats outside the type's range, or
// anything that is not a number, are an error instead of a silent cast.
template <class T>
T int_field(const json& j, const char* key, T fallback) {
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return fallback;
  const json& v = j.at(key);
  if (!v.is_number()) throw std::runtime_error(std::string("field '") + key + "' is not a number");
  const long double x = v.is_number_unsigned() ? (long double)v.get<uint64_t>()
                        : v.is_number_integer() ? (long double)v.get<int64_t>()
                                                : (long double)v.get<double>();
  if (!(x >= (long double)std::numeric_limits<T>::lowest() && x <= (long double)std::numeric_limits<T>::max()))
    throw std::runtime_error(std::string("field '") + key + "' is out of range");
  return static_cast<T>(x);
}

json SamplingSettings::to_json() const {
  return {{"temperature", temperature}, {"top_p", top_p}, {"top_k", top_k}, {"min_p", min_p},
          {"repetition_penalty", repetition_penalty}, {"max_tokens", max_tokens}, {"seed", seed},
          {"random_seed", random_seed}};
}

SamplingSettings SamplingSettings::from_json(const json& j) {
  SamplingSettings d;
  SamplingSettings r;
  // Numbers that are not finite (1e999 reads as infinity) or out of their range are refused: the
  // conversation is set aside with the reason rather than answered with garbage.
  auto number = [&](const char* key, double fallback, double lo, double hi) {
    const double v = j.value(key, fallback);
    if (!std::isfinite(v) || v < lo || v > hi)
      throw std::runtime_error(std::string("sampling setting '") + key + "' must be a finite number between " +
                               QString::number(lo).toStdString() + " and " + QString::number(hi).toStdString());
    return v;
  };
  r.temperature = number("temperature", d.temperature, 0.0, 100.0);
  r.top_p = number("top_p", d.top_p, 0.0, 1.0);
  r.top_k = int_field(j, "top_k", d.top_k);
  r.min_p = number("min_p", d.min_p, 0.0, 1.0);
  r.repetition_penalty = number("repetition_penalty", d.repetition_penalty, 0.01, 100.0);
  r.max_tokens = int_field(j, "max_tokens", d.max_tokens);
  r.seed = int_field(j, "seed", d.seed);
  r.random_seed = j.value("random_seed", d.random_seed);
  return r;
}

Conversation Conversation::create() {
  Conversation c;
  c.id = QUuid::createUuid().toString(QUuid::WithoutBraces);
  c.title = QStringLiteral("New chat");
  c.created = c.updated = QDateTime::currentDateTimeUtc();
  return c;
}

json Conversation::to_json() const {
  json msgs = json::array();
  for (const auto& m : messages) {
    json jm = {{"role", s(m.role)}, {"content", s(m.content)}};
    if (m.role == QLatin1String("assistant")) {
      jm["tokens"] = m.tokens;
      jm["tokens_per_second"] = m.tokens_per_second;
      jm["stop_reason"] = s(m.stop_reason);
    }
    msgs.push_back(std::move(jm));
  }
  return {{"version", 1},
          {"id", s(id)},
          {"title", s(title)},
          {"created", s(created.toString(Qt::ISODateWithMs))},
          {"updated", s(updated.toString(Qt::ISODateWithMs))},
          {"model_dir", s(model_dir)},
          {"model_name", s(model_name)},
          {"system_prompt", s(system_prompt)},
          {"sampling", sampling.to_json()},
          {"messages", std::move(msgs)},
          {"trace", trace ? trace->to_json() : json()}};
}

Conversation Conversation::from_json(const json& j) {
  if (!j.is_object()) throw std::runtime_error("not a JSON object");
  if (int_field(j, "version", 0) != 1) throw std::runtime_error("unknown conversation format version");
  Conversation c;
  c.id = q(j, "id");
  if (c.id.isEmpty()) throw std::runtime_error("conversation without an id");
  c.title = q(j, "title", QStringLiteral("Untitled"));
  c.created = time_of(j, "created");
  c.updated = time_of(j, "updated");
  c.model_dir = q(j, "model_dir");
  c.model_name = q(j, "model_name");
  c.system_prompt = q(j, "system_prompt");
  if (j.contains("sampling")) c.sampling = SamplingSettings::from_json(j.at("sampling"));
  for (const auto& jm : j.at("messages")) {
    Message m;
    m.role = q(jm, "role");
    if (m.role != QLatin1String("user") && m.role != QLatin1String("assistant"))
      throw std::runtime_error("message with unknown role '" + m.role.toStdString() + "'");
    m.content = q(jm, "content");
    m.tokens = int_field(jm, "tokens", 0);
    m.tokens_per_second = jm.value("tokens_per_second", 0.0);
    m.stop_reason = q(jm, "stop_reason");
    c.messages.push_back(std::move(m));
  }
  // The trace is read once, here; a damaged one is dropped (the messages are what matters).
  if (const auto it = j.find("trace"); it != j.end() && !it->is_null()) {
    try {
      c.trace = std::make_shared<const RoutingTrace>(RoutingTrace::from_json(*it));
    } catch (const std::exception& e) {
      spdlog::warn("routing trace of conversation {} ignored: {}", c.id.toStdString(), e.what());
    }
  }
  return c;
}

nlohmann::ordered_json Conversation::template_messages() const {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (!system_prompt.trimmed().isEmpty())
    out.push_back({{"role", "system"}, {"content", s(system_prompt)}});
  for (const auto& m : messages) {
    QString content = m.content;
    if (m.role == QLatin1String("assistant")) {
      // (gpt-oss: also a final message alone, whose channel markers its template refuses.)
      ThinkingSplit t = split_thinking(content);
      if (t.has_thinking || t.thinking_done) content = t.answer;
    }
    out.push_back({{"role", s(m.role)}, {"content", s(content)}});
  }
  return out;
}

QString Conversation::to_markdown() const {
  QString md = QStringLiteral("# %1\n\n").arg(title);
  if (!model_name.isEmpty()) md += QStringLiteral("*Model: %1*\n\n").arg(model_name);
  if (!system_prompt.trimmed().isEmpty())
    md += QStringLiteral("**System:** %1\n\n").arg(system_prompt.trimmed());
  for (const auto& m : messages) {
    md += m.role == QLatin1String("user") ? QStringLiteral("## You\n\n") : QStringLiteral("## Assistant\n\n");
    md += m.content.trimmed() + QStringLiteral("\n\n");
  }
  return md;
}

bool Conversation::matches(const QString& needle) const {
  if (needle.isEmpty() || title.contains(needle, Qt::CaseInsensitive)) return true;
  for (const auto& m : messages)
    if (m.content.contains(needle, Qt::CaseInsensitive)) return true;
  return false;
}

}  // namespace moescope::ui
