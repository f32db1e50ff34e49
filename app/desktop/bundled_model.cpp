#include <QDir>

#include "app_options.h"
#include "moescope/resources.h"

namespace moescope::desktop {

// The shipped teaching model (moescope/resources.h: $MOESCOPE_BUNDLED_MODEL, the installed share
// folder, the source tree's resources/); never test data.
QString bundled_model_dir() { return QString::fromStdString(moescope::bundled_model_dir().string()); }

}  // namespace moescope::desktop
