#include "screenshot.h"

#include <QApplication>
#include <QDockWidget>
#include <QTimer>
#include <spdlog/spdlog.h>

#include "main_window.h"

namespace moescope::desktop {

ScreenshotRun::ScreenshotRun(MainWindow* window, ScreenshotOptions options)
    : QObject(window), window_(window), options_(std::move(options)) {
  connect(window_, &MainWindow::modelReady, this, [this] { onModelSettled(true); });
  connect(window_, &MainWindow::modelFailed, this, [this] { onModelSettled(false); });
  connect(window_, &MainWindow::answerFinished, this, &ScreenshotRun::capture);
  connect(window_, &MainWindow::answerFailed, this, &ScreenshotRun::capture);
  QTimer::singleShot(options_.timeout_ms, this, [this] {
    spdlog::warn("screenshot: timed out waiting for the window to settle; capturing anyway");
    capture();
  });
}

QString ScreenshotRun::validate() const {
  QStringList unknown;
  for (const QString& v : options_.views)
    if (!window_->viewWidget(v)) unknown << v;
  if (unknown.isEmpty()) return {};
  const QStringList known = window_->viewIds();
  return QStringLiteral("unknown view(s) %1; available: %2")
      .arg(unknown.join(QStringLiteral(", ")), known.isEmpty() ? QStringLiteral("none yet") : known.join(QStringLiteral(", ")));
}

void ScreenshotRun::onModelSettled(bool ok) {
  if (settled_) return;
  settled_ = true;
  for (const QString& v : options_.views) window_->showView(v);
  if (ok && !options_.prompt.isEmpty())
    window_->send(options_.prompt);
  else
    capture();
}

void ScreenshotRun::capture() {
  if (captured_) return;
  captured_ = true;
  // Let layouts and the last repaint settle before grabbing.
  // With exactly one --view, the capture is that view's dock, floated at a readable size.
  QWidget* target = window_;
  if (options_.views.size() == 1)
    if (QDockWidget* dock = window_->viewDock(options_.views.front())) {
      dock->setFloating(true);
      dock->resize(960, 600);
      target = dock->widget();
    }
  QTimer::singleShot(400, this, [this, target] {
    const bool ok = target->grab().save(options_.file);
    if (ok)
      spdlog::info("screenshot saved to {}", options_.file.toStdString());
    else
      spdlog::error("could not write the screenshot {}", options_.file.toStdString());
    QApplication::exit(ok ? 0 : 1);
  });
}

}  // namespace moescope::desktop
