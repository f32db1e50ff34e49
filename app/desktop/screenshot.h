#pragma once
// `moescope --screenshot FILE.png [--prompt TEXT] [--view NAME]...`: waits until the model is
// loaded (or failed), optionally sends the prompt and waits for the answer, shows the named
// views, saves MainWindow::grab() to FILE and quits. For docs, reviews and visual checks.
#include <QObject>
#include <QString>
#include <QStringList>

namespace moescope::desktop {

class MainWindow;

struct ScreenshotOptions {
  QString file;
  QString prompt;
  QStringList views;  // view ids to show before the capture (see ui::ViewRegistry)
  int timeout_ms = 180000;
};

class ScreenshotRun : public QObject {
  Q_OBJECT
public:
  ScreenshotRun(MainWindow* window, ScreenshotOptions options);
  // Checks the options (unknown views); returns an error line or empty.
  QString validate() const;

private:
  void onModelSettled(bool ok);
  void capture();
  MainWindow* window_;
  ScreenshotOptions options_;
  bool settled_ = false;
  bool captured_ = false;
};

}  // namespace moescope::desktop
