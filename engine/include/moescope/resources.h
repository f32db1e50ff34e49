#pragma once
// Where the shipped resources are found, for every program (the desktop app, moescope-cli, the
// tools): the installed share folder beside the binary first (<bin>/../share/moescope, the
// installer's layout), then the source tree's resources/ (a build run in place). One list of the
// configuration-only presets (resources/presets/*.json).
#include <filesystem>
#include <string>
#include <vector>

namespace moescope {

std::vector<std::filesystem::path> resource_roots();
// The bundled teaching model: $MOESCOPE_BUNDLED_MODEL when set, else models/moescope-tiny under
// the first root that has it. Empty when none is found.
std::filesystem::path bundled_model_dir();
// The shipped presets in menu order, and the file of one (empty when it is not installed).
const std::vector<std::string>& preset_names();
std::filesystem::path preset_path(const std::string& name);

}  // namespace moescope
