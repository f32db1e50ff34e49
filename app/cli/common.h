#pragma once
// Helpers shared by the model-running subcommands.
#include <filesystem>
#include <memory>
#include <string>

#include "args.h"
#include "moescope/backend.h"
#include "moescope/model_weights.h"
#include "moescope/routing.h"

namespace moescope::cli {

// --model DIR, else the bundled teaching model; Error when neither exists.
std::filesystem::path model_dir(const Args& args);
// resources/presets/NAME.json (installed share dir or source tree); Error listing the names.
std::filesystem::path preset_path(const std::string& name);
// Interventions from --disable-experts 'L:E,E;*:E', --force-expert [L:]E, --top-k-experts K,
// --ignore-bias (validated against the model).
RoutingControl routing_control(const Args& args, const ModelSpec& spec);
// Load options from --weights as-stored|q8_0 (Error naming both for anything else).
LoadOptions load_options(const Args& args);
// Backend options from --backend, --context, --threads.
BackendOptions backend_options(const Args& args);

}  // namespace moescope::cli
