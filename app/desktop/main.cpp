// moescope: the desktop app. Parses the command line, sets up logging, builds the main window
// and, with --screenshot, captures it and exits.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QTemporaryDir>
#include <memory>
#include <string_view>
#include <spdlog/spdlog.h>

#include "app_options.h"
#include "logging.h"
#include "main_window.h"
#include "screenshot.h"
#include "ui/conversation_store.h"
#include "ui/experiments/register_experiments.h"
#include "ui/view_registry.h"
#include "ui/views/register_views.h"

namespace {

struct Options {
  QCommandLineOption model{{QStringLiteral("m"), QStringLiteral("model")}, QStringLiteral("Model directory or GGUF file to open."),
                           QStringLiteral("PATH")};
  QCommandLineOption backend{QStringLiteral("backend"), QStringLiteral("Backend: auto (default), cpu or cuda."),
                             QStringLiteral("KIND")};
  QCommandLineOption weights{QStringLiteral("weights"),
                             QStringLiteral("as-stored (default) or q8_0: quantise the F32/BF16/F16 weights to Q8_0 as "
                                            "the model loads (about half the memory of BF16; the file is not changed)."),
                             QStringLiteral("MODE")};
  QCommandLineOption screenshot{QStringLiteral("screenshot"),
                                QStringLiteral("Save a screenshot of the window to FILE.png once it has settled, then exit. "
                                               "Uses a fresh data folder unless MOESCOPE_DATA_DIR is set."),
                                QStringLiteral("FILE")};
  QCommandLineOption prompt{QStringLiteral("prompt"), QStringLiteral("With --screenshot: send TEXT and wait for the answer first."),
                            QStringLiteral("TEXT")};
  QCommandLineOption view{QStringLiteral("view"), QStringLiteral("With --screenshot: show the view NAME (repeatable)."),
                          QStringLiteral("NAME")};
};

void describe(QCoreApplication& app, QCommandLineParser& parser, const Options& o) {
  QCoreApplication::setApplicationName(QStringLiteral("moescope"));
  QCoreApplication::setOrganizationName(QStringLiteral("moescope"));
  QCoreApplication::setApplicationVersion(QStringLiteral(MOESCOPE_VERSION));
  parser.setApplicationDescription(QStringLiteral("Chat with a Mixture-of-Experts model while watching its experts work."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addOptions({o.model, o.backend, o.weights, o.screenshot, o.prompt, o.view});
  parser.process(app);
}

// --help and --version only print: they must work without a display, so they are answered
// before the QApplication (which needs one) exists.
bool prints_and_exits(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help" || a == "--help-all" || a == "-v" || a == "--version" || a == "-?") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o;
  if (prints_and_exits(argc, argv)) {
    QCoreApplication core(argc, argv);
    QCommandLineParser parser;
    describe(core, parser, o);  // prints and exits
    return 0;
  }
  QApplication app(argc, argv);
  QCommandLineParser parser;
  describe(app, parser, o);
  const QCommandLineOption &model = o.model, &backend = o.backend, &screenshot = o.screenshot, &prompt = o.prompt,
                           &view = o.view;

  moescope::desktop::AppOptions options;
  options.model_dir = parser.value(model);
  options.backend = parser.value(backend);
  if (!options.backend.isEmpty() && options.backend != QLatin1String("auto") && options.backend != QLatin1String("cpu") &&
      options.backend != QLatin1String("cuda")) {
    spdlog::error("--backend must be auto, cpu or cuda (got '{}')", options.backend.toStdString());
    return 2;
  }
  options.weights = parser.value(o.weights).toLower();
  if (!options.weights.isEmpty() && options.weights != QLatin1String("as-stored") && options.weights != QLatin1String("q8_0")) {
    spdlog::error("--weights must be as-stored or q8_0 (got '{}')", options.weights.toStdString());
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

  moescope::ui::ViewRegistry views;
  moescope::ui::register_views(views);        // the dock-widget views of ui/views
  moescope::ui::register_experiments(views);  // anatomy, routing experiments, corpus analysis (ui/experiments)
  moescope::desktop::MainWindow window(options, views);  // the composition root (docs/architecture.md)
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
