#include "presets.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

namespace moescope::ui {

QStringList preset_names() {
  return {QStringLiteral("deepseek-r1"), QStringLiteral("deepseek-v2-lite"), QStringLiteral("qwen3-30b-a3b"),
          QStringLiteral("olmoe-1b-7b"), QStringLiteral("mixtral-8x7b"),
          QStringLiteral("gpt-oss-20b"), QStringLiteral("gpt-oss-120b")};
}

QString preset_path(const QString& name) {
  QStringList roots;
  if (QCoreApplication::instance())
    roots << QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("../share/moescope"));
  roots << QStringLiteral(MOESCOPE_SOURCE_RESOURCES);
  for (const QString& root : roots) {
    const QString p = QDir(root).filePath(QStringLiteral("presets/") + name + QStringLiteral(".json"));
    if (QFileInfo::exists(p)) return QFileInfo(p).absoluteFilePath();
  }
  return {};
}

}  // namespace moescope::ui
