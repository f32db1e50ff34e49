#include "app_settings.h"

#include <algorithm>

namespace moescope::desktop {

AppSettings::AppSettings(const QString& ini_file)
    : s_(ini_file.isEmpty() ? std::make_unique<QSettings>(QStringLiteral("moescope"), QStringLiteral("moescope"))
                            : std::make_unique<QSettings>(ini_file, QSettings::IniFormat)) {}

QString AppSettings::backend() const { return s_->value(QStringLiteral("engine/backend"), QStringLiteral("auto")).toString(); }
void AppSettings::setBackend(const QString& kind) { s_->setValue(QStringLiteral("engine/backend"), kind); }
int AppSettings::threads() const { return s_->value(QStringLiteral("engine/threads"), 0).toInt(); }

int AppSettings::routerScores() const {
  const int v = s_->value(QStringLiteral("engine/router_scores"), 0).toInt();
  return v >= 0 && v <= 2 ? v : 0;
}
void AppSettings::setRouterScores(int mode) { s_->setValue(QStringLiteral("engine/router_scores"), mode); }

QStringList AppSettings::recentModels() const { return s_->value(QStringLiteral("models/recent")).toStringList(); }

// models/recent_labels and models/recent_weights run beside models/recent, entry for entry (files
// written before they existed lack them: missing entries read as empty).
void AppSettings::addRecentModel(const QString& dir, const QString& label, const QString& weights) {
  QStringList list = recentModels();
  QStringList labels = s_->value(QStringLiteral("models/recent_labels")).toStringList();
  QStringList modes = s_->value(QStringLiteral("models/recent_weights")).toStringList();
  labels.resize(list.size());
  modes.resize(list.size());
  for (qsizetype i = list.indexOf(dir); i >= 0; i = list.indexOf(dir)) {
    list.removeAt(i);
    labels.removeAt(i);
    modes.removeAt(i);
  }
  list.prepend(dir);
  labels.prepend(label);
  modes.prepend(weights);
  const qsizetype keep = std::min<qsizetype>(list.size(), 8);
  list.resize(keep), labels.resize(keep), modes.resize(keep);
  s_->setValue(QStringLiteral("models/recent"), list);
  s_->setValue(QStringLiteral("models/recent_labels"), labels);
  s_->setValue(QStringLiteral("models/recent_weights"), modes);
}

QString AppSettings::recentLabel(const QString& dir) const {
  const QStringList labels = s_->value(QStringLiteral("models/recent_labels")).toStringList();
  const qsizetype i = recentModels().indexOf(dir);
  return i >= 0 && i < labels.size() ? labels[i] : QString();
}

QString AppSettings::recentWeights(const QString& dir) const {
  const QStringList modes = s_->value(QStringLiteral("models/recent_weights")).toStringList();
  const qsizetype i = recentModels().indexOf(dir);
  return i >= 0 && i < modes.size() && !modes[i].isEmpty() ? modes[i] : QStringLiteral("as-stored");
}

bool AppSettings::quantiseOnLoad() const { return s_->value(QStringLiteral("models/quantise_q8_0"), false).toBool(); }
void AppSettings::setQuantiseOnLoad(bool on) { s_->setValue(QStringLiteral("models/quantise_q8_0"), on); }

QString AppSettings::lastModel() const {
  const QStringList list = recentModels();
  return list.isEmpty() ? QString() : list.front();
}

QString AppSettings::serverUrl() const { return s_->value(QStringLiteral("server/url")).toString(); }
QString AppSettings::serverModel() const { return s_->value(QStringLiteral("server/model")).toString(); }
QString AppSettings::serverConfig() const { return s_->value(QStringLiteral("server/config")).toString(); }
int AppSettings::serverTimeoutMs() const {
  const int v = s_->value(QStringLiteral("server/timeout_ms"), 60000).toInt();
  return v > 0 ? v : 60000;
}
bool AppSettings::rememberServerKey() const { return s_->value(QStringLiteral("server/remember_key"), false).toBool(); }
QString AppSettings::serverKey() const {
  return rememberServerKey() ? s_->value(QStringLiteral("server/api_key")).toString() : QString();
}

void AppSettings::saveServer(const QString& url, const QString& model, const QString& config, int timeout_ms,
                             bool remember_key, const QString& key) {
  s_->setValue(QStringLiteral("server/url"), url);
  s_->setValue(QStringLiteral("server/model"), model);
  s_->setValue(QStringLiteral("server/config"), config);
  s_->setValue(QStringLiteral("server/timeout_ms"), timeout_ms);
  s_->setValue(QStringLiteral("server/remember_key"), remember_key);
  if (remember_key && !key.isEmpty()) s_->setValue(QStringLiteral("server/api_key"), key);
  else s_->remove(QStringLiteral("server/api_key"));  // a key not to remember is not kept
  s_->sync();
}

QByteArray AppSettings::windowGeometry() const { return s_->value(QStringLiteral("window/geometry")).toByteArray(); }
QByteArray AppSettings::windowState() const { return s_->value(QStringLiteral("window/state")).toByteArray(); }
QByteArray AppSettings::splitterState() const { return s_->value(QStringLiteral("window/splitter")).toByteArray(); }

void AppSettings::saveWindow(const QByteArray& geometry, const QByteArray& state, const QByteArray& splitter) {
  s_->setValue(QStringLiteral("window/geometry"), geometry);
  s_->setValue(QStringLiteral("window/state"), state);
  s_->setValue(QStringLiteral("window/splitter"), splitter);
  s_->sync();
}

}  // namespace moescope::desktop
