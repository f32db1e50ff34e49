#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

#include "app_options.h"

namespace moescope::desktop {

QString bundled_model_dir() {
  QStringList candidates;
  const QByteArray env = qgetenv("MOESCOPE_BUNDLED_MODEL");
  if (!env.isEmpty()) candidates << QString::fromLocal8Bit(env);
  candidates << QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("../share/moescope/models/moescope-tiny"));
  candidates << QStringLiteral(MOESCOPE_SOURCE_RESOURCES "/models/moescope-tiny");
  candidates << QStringLiteral(MOESCOPE_CHAT_TEST_MODEL);
  for (const QString& c : candidates)
    if (QFileInfo::exists(c + QStringLiteral("/config.json"))) return QDir(c).canonicalPath();
  return {};
}

}  // namespace moescope::desktop
