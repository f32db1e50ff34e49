#include "ui/conversation_store.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>
#include <QStandardPaths>
#include <algorithm>
#include <spdlog/spdlog.h>

namespace moescope::ui {

ConversationStore::ConversationStore(QString dir) : dir_(std::move(dir)) { QDir().mkpath(dir_); }

QString ConversationStore::path_of(const QString& id) const { return QDir(dir_).filePath(id + QStringLiteral(".json")); }

ConversationStore::LoadResult ConversationStore::load_all() const {
  LoadResult r;
  const QDir d(dir_);
  for (const QString& name : d.entryList({QStringLiteral("*.json")}, QDir::Files, QDir::Name)) {
    const QString path = d.filePath(name);
    QFile f(path);
    try {
      if (!f.open(QIODevice::ReadOnly)) throw std::runtime_error(f.errorString().toStdString());
      const QByteArray bytes = f.readAll();
      f.close();
      Conversation c = Conversation::from_json(nlohmann::json::parse(bytes.constData(), bytes.constData() + bytes.size()));
      r.conversations.push_back(std::move(c));
    } catch (const std::exception& e) {
      f.close();
      const QString aside = path + QStringLiteral(".corrupt-") +
                            QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"));
      const bool moved = QFile::rename(path, aside);
      const QString line = QStringLiteral("Conversation file %1 could not be read (%2); %3")
                               .arg(name, QString::fromUtf8(e.what()),
                                    moved ? QStringLiteral("it was moved aside to %1").arg(QFileInfo(aside).fileName())
                                          : QStringLiteral("it could not be moved aside"));
      spdlog::warn("{}", line.toStdString());
      r.problems << line;
    }
  }
  std::stable_sort(r.conversations.begin(), r.conversations.end(),
                   [](const Conversation& a, const Conversation& b) { return a.updated > b.updated; });
  return r;
}

QString ConversationStore::save(const Conversation& c) const {
  QDir().mkpath(dir_);
  QSaveFile f(path_of(c.id));
  if (!f.open(QIODevice::WriteOnly)) return f.errorString();
  const std::string text = c.to_json().dump(1);
  // A short write (disk full) must not replace the previous file: cancel, keep the old one.
  if (f.write(text.data(), qint64(text.size())) != qint64(text.size()) || !f.flush()) {
    const QString why = f.errorString().isEmpty() ? QStringLiteral("short write (disk full?)") : f.errorString();
    f.cancelWriting();
    f.commit();
    return why;
  }
  if (!f.commit()) return f.errorString();
  return {};
}

bool ConversationStore::remove(const QString& id) const { return QFile::remove(path_of(id)); }

QString default_data_dir() {
  const QByteArray env = qgetenv("MOESCOPE_DATA_DIR");
  if (!env.isEmpty()) return QString::fromLocal8Bit(env);
  return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
}

}  // namespace moescope::ui
