#pragma once
// Helpers shared by the model-running subcommands.
#include <filesystem>
#include <memory>
#include <string>

#include "args.h"
#include "moescope/backend.h"
#include "moescope/model_weights.h"

namespace moescope::cli {

// --model DIR, else the bundled teaching model; Error when neither exists.
std::filesystem::path model_dir(const Args& args);
// resources/presets/NAME.json (installed share dir or source tree); Error listing the names.
std::filesystem::path preset_path(const std::string& name);
// Backend options from --backend, --context, --threads.
BackendOptions backend_options(const Args& args);

}  // namespace moescope::cli
