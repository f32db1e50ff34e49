#pragma once
#include <QString>

namespace moescope::desktop {

// spdlog's default logger: stderr plus a rotating file `logs/moescope.log` in data_dir
// (5 MB × 3 files). Returns the log file's path.
QString setup_logging(const QString& data_dir);

}  // namespace moescope::desktop
