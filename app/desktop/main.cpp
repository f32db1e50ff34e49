// moescope: the desktop app. Parses the command line, sets up logging, builds the main window
// and, with --screenshot, captures it and exits.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QTemporaryDir>
#include <memory>
#include <spdlog/spdlog.h>

#include "app_options.h"
#include "logging.h"
#include "main_window.h"
#include "screenshot.h"
#include "ui/conversation_store.h"
#include "engine_controller.h"
#include "ui/experiments/register_experiments.h"
#include "ui/views/register_views.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("moescope"));
  QApplication::setOrganizationName(QStringLiteral("moescope"));
  QApplication::setApplicationVersion(QStringLiteral(MOESCOPE_VERSION));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("Chat with a Mixture-of-Experts model while watching its experts work."));
  parser.addHelpOption();
  parser.addVersionOption();
  const QCommandLineOption model({QStringLiteral("m"), QStringLiteral("model")}, QStringLiteral("Model directory to open."), QStringLiteral("DIR"));
  const QCommandLineOption backend(QStringLiteral("backend"), QStringLiteral("Backend: auto (default), cpu or cuda."), QStringLiteral("KIND"));
  const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                      QStringLiteral("Save a screenshot of the window to FILE.png once it has settled, then exit. "
                                                     "Uses a fresh data folder unless MOESCOPE_DATA_DIR is set."),
                                      QStringLiteral("FILE"));
  const QCommandLineOption prompt(QStringLiteral("prompt"), QStringLiteral("With --screenshot: send TEXT and wait for the answer first."), QStringLiteral("TEXT"));
  const QCommandLineOption view(QStringLiteral("view"), QStringLiteral("With --screenshot: show the view NAME (repeatable)."), QStringLiteral("NAME"));
  parser.addOptions({model, backend, screenshot, prompt, view});
  parser.process(app);

  moescope::desktop::AppOptions options;
  options.model_dir = parser.value(model);
  options.backend = parser.value(backend);
  if (!options.backend.isEmpty() && options.backend != QLatin1String("auto") && options.backend != QLatin1String("cpu") &&
      options.backend != QLatin1String("cuda")) {
    spdlog::error("--backend must be auto, cpu or cuda (got '{}')", options.backend.toStdString());
    return 2;
  }
  if (!options.model_dir.isEmpty()) options.model_dir = QDir(options.model_dir).absolutePath();

  // Screenshots never touch the user's conversations or settings.
  std::unique_ptr<QTemporaryDir> scratch;
  if (parser.isSet(screenshot) && qEnvironmentVariableIsEmpty("MOESCOPE_DATA_DIR")) {
    scratch = std::make_unique<QTemporaryDir>();
    options.data_dir = scratch->path();
  }
  if (options.data_dir.isEmpty()) options.data_dir = moescope::ui::default_data_dir();
  if (parser.isSet(screenshot)) options.settings_file = QDir(options.data_dir).filePath(QStringLiteral("settings.ini"));
  const QString log_file = moescope::desktop::setup_logging(options.data_dir);
  spdlog::info("moescope {} starting; data in {}, log {}", MOESCOPE_VERSION, options.data_dir.toStdString(), log_file.toStdString());

  moescope::ui::register_views();  // the dock-widget views of ui/views, before the window builds its docks
  moescope::ui::register_experiments();  // anatomy, routing experiments, corpus analysis (ui/experiments)
  moescope::desktop::MainWindow window(options);
  moescope::ui::attach_experiments(window, [&window](const moescope::RoutingControl& c) { window.engine()->setRoutingControl(c); });
  if (parser.isSet(screenshot)) {
    moescope::desktop::ScreenshotOptions so;
    so.file = parser.value(screenshot);
    so.prompt = parser.value(prompt);
    so.views = parser.values(view);
    auto* run = new moescope::desktop::ScreenshotRun(&window, so);
    if (const QString err = run->validate(); !err.isEmpty()) {
      spdlog::error("--view: {}", err.toStdString());
      return 2;
    }
  }
  window.show();
  return app.exec();
}
