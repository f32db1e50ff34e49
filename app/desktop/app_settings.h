#pragma once
// The app's preferences and remembered state in QSettings: backend, recent models, window layout.
#include <QByteArray>
#include <QSettings>
#include <QStringList>
#include <memory>

namespace moescope::desktop {

class AppSettings {
public:
  explicit AppSettings(const QString& ini_file = {});  // empty: the platform's location

  QString backend() const;  // "auto" | "cpu" | "cuda"
  void setBackend(const QString& kind);
  int threads() const;      // 0: all
  int routerScores() const;  // RouterScores as int: 0 automatic, 1 always, 2 never
  void setRouterScores(int mode);
  QStringList recentModels() const;
  // Most recent first, at most 8; `label` is what the recent-models menu shows beside the name
  // (weights_label), `weights` how it was loaded ("as-stored" | "q8_0"), used when it is reopened.
  void addRecentModel(const QString& dir, const QString& label = {}, const QString& weights = {});
  QString recentLabel(const QString& dir) const;    // empty when unknown
  QString recentWeights(const QString& dir) const;  // "as-stored" when unknown
  QString lastModel() const;
  // File ▸ Open model…'s "Quantise the weights to Q8_0 on load", as last chosen.
  bool quantiseOnLoad() const;
  void setQuantiseOnLoad(bool on);
  // The remote backend (File ▸ Connect to a server): the last server, and its API key only when
  // the user asked to remember it (stored unencrypted in this file: the dialog says so).
  QString serverUrl() const;
  QString serverModel() const;
  QString serverConfig() const;
  int serverTimeoutMs() const;
  bool rememberServerKey() const;
  QString serverKey() const;  // empty unless remembered
  void saveServer(const QString& url, const QString& model, const QString& config, int timeout_ms, bool remember_key,
                  const QString& key);
  QString fileName() const { return s_->fileName(); }
  QByteArray windowGeometry() const;
  QByteArray windowState() const;
  QByteArray splitterState() const;
  void saveWindow(const QByteArray& geometry, const QByteArray& state, const QByteArray& splitter);

private:
  std::unique_ptr<QSettings> s_;
};

}  // namespace moescope::desktop
