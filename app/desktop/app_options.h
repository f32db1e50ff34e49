#pragma once
// How the window starts: from the command line (main.cpp) or from a test.
#include <QString>

namespace moescope::desktop {

struct AppOptions {
  QString model_dir;      // --model; empty: last used model, else the bundled one
  QString backend;        // --backend; empty: the saved preference ("auto" by default)
  QString weights;        // --weights as-stored|q8_0; empty: as the model was last loaded
  QString data_dir;       // conversations and logs; empty: ui::default_data_dir()
  QString settings_file;  // an INI file; empty: the platform's QSettings location
  bool load_model = true; // false: start without loading any model
};

// The default model when none is given: $MOESCOPE_BUNDLED_MODEL, the installed teaching model,
// the source tree's resources/models/moescope-tiny, and (until that exists) the chat test model
// tests/data/models/chat-tiny. Empty when none is there.
QString bundled_model_dir();

}  // namespace moescope::desktop
