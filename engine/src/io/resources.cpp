#include "moescope/resources.h"

#include <cstdlib>

namespace moescope {

namespace fs = std::filesystem;

std::vector<fs::path> resource_roots() {
  std::vector<fs::path> roots;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.push_back(exe.parent_path().parent_path() / "share/moescope");
  roots.emplace_back(MOESCOPE_SOURCE_RESOURCES);
  return roots;
}

fs::path bundled_model_dir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MOESCOPE_BUNDLED_MODEL"); env && *env) candidates.emplace_back(env);
  for (const fs::path& root : resource_roots()) candidates.push_back(root / "models/moescope-tiny");
  std::error_code ec;
  for (const fs::path& c : candidates)
    if (fs::exists(c / "config.json", ec)) return fs::weakly_canonical(c, ec);
  return {};
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"deepseek-r1", "deepseek-v2-lite", "qwen3-30b-a3b", "olmoe-1b-7b",
                                                 "mixtral-8x7b", "gpt-oss-20b", "gpt-oss-120b",
                                                 "qwen3.5-35b-a3b", "glm-4.5-air", "glm-4.7-flash"};
  return names;
}

fs::path preset_path(const std::string& name) {
  std::error_code ec;
  for (const fs::path& root : resource_roots())
    if (const fs::path p = root / "presets" / (name + ".json"); fs::exists(p, ec)) return fs::absolute(p, ec);
  return {};
}

}  // namespace moescope
