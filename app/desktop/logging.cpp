#include "logging.h"

#include <QDir>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace moescope::desktop {

QString setup_logging(const QString& data_dir) {
  const QString dir = QDir(data_dir).filePath(QStringLiteral("logs"));
  QDir().mkpath(dir);
  const QString file = QDir(dir).filePath(QStringLiteral("moescope.log"));
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  try {
    sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file.toStdString(), 5 * 1024 * 1024, 3));
  } catch (const spdlog::spdlog_ex& e) {
    sinks.front()->log(spdlog::details::log_msg("moescope", spdlog::level::warn, e.what()));
  }
  auto logger = std::make_shared<spdlog::logger>("moescope", sinks.begin(), sinks.end());
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return file;
}

}  // namespace moescope::desktop
