#include "common.h"

#include <cstdlib>

#include "moescope/error.h"

namespace moescope::cli {

namespace fs = std::filesystem;

fs::path model_dir(const Args& args) {
  if (auto m = args.get("model")) {
    if (!fs::exists(*m)) throw Error("model directory " + *m + " does not exist");
    return *m;
  }
  // The bundled teaching model: installed beside the binary's share dir, or in the source tree.
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MOESCOPE_BUNDLED_MODEL")) candidates.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/moescope/models/moescope-tiny");
  candidates.push_back(fs::path(MOESCOPE_SOURCE_RESOURCES) / "models/moescope-tiny");
  for (const auto& c : candidates)
    if (fs::exists(c / "config.json")) return c;
  throw Error("no --model given and the bundled teaching model was not found");
}

namespace {
std::vector<fs::path> resource_roots() {
  std::vector<fs::path> roots;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.push_back(exe.parent_path().parent_path() / "share/moescope");
  roots.emplace_back(MOESCOPE_SOURCE_RESOURCES);
  return roots;
}
}  // namespace

fs::path preset_path(const std::string& name) {
  static const char* kPresets[] = {"deepseek-r1", "deepseek-v2-lite", "qwen3-30b-a3b", "olmoe-1b-7b", "mixtral-8x7b"};
  std::string list;
  for (const char* p : kPresets) {
    list += std::string(list.empty() ? "" : ", ") + p;
    if (name != p) continue;
    for (const auto& root : resource_roots())
      if (fs::exists(root / "presets" / (name + ".json"))) return root / "presets" / (name + ".json");
    throw Error("preset " + name + " is not installed");
  }
  throw Error("unknown preset '" + name + "' (presets: " + list + ")");
}

BackendOptions backend_options(const Args& args) {
  BackendOptions o;
  o.kind = args.get_or("backend", "auto");
  o.context = int(args.get_int("context", 0));
  o.threads = int(args.get_int("threads", 0));
  if (o.context < 0) throw Error("--context must be positive");
  return o;
}

}  // namespace moescope::cli
