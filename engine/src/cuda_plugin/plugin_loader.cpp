// Finds and loads libmoescope_cuda.so (see plugin_api.h). Looked for, in order:
//   $MOESCOPE_CUDA_PLUGIN (a file path);
//   <dir of the executable>/../lib/moescope/libmoescope_cuda.so (the installed layout);
//   the build tree's copy (MOESCOPE_CUDA_PLUGIN_BUILD_PATH), so a plugin build runs uninstalled.
// Loaded once; a plugin that cannot be loaded (no libcublas, no driver) is a reason, not an error:
// make_backend("auto") then falls back to the CPU backend and says why.
#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_plugin/plugin_api.h"
#include "moescope/error.h"

namespace moescope {

namespace fs = std::filesystem;

namespace {

struct Loaded {
  const CudaPluginApi* api = nullptr;
  std::string why;  // when api is null
};

const Loaded& loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("MOESCOPE_CUDA_PLUGIN"); env && *env) candidates.emplace_back(env);
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path().parent_path() / "lib/moescope/libmoescope_cuda.so");
#ifdef MOESCOPE_CUDA_PLUGIN_BUILD_PATH
    candidates.emplace_back(MOESCOPE_CUDA_PLUGIN_BUILD_PATH);
#endif
    std::string tried;
    for (const fs::path& p : candidates) {
      if (!fs::exists(p, ec)) {
        tried += (tried.empty() ? "" : ", ") + p.string();
        continue;
      }
      void* h = ::dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char* e = ::dlerror();
        l.why = "the CUDA plugin " + p.string() + " cannot be loaded: " + (e ? e : "unknown error") +
                " (is the CUDA runtime with cuBLAS installed?)";
        return;
      }
      auto entry = reinterpret_cast<const CudaPluginApi* (*)()>(::dlsym(h, "moescope_cuda_plugin_api"));
      const CudaPluginApi* api = entry ? entry() : nullptr;
      if (!api || api->version != kCudaPluginApiVersion) {
        l.why = "the CUDA plugin " + p.string() + " is from another build of moescope";
        return;
      }
      l.api = api;  // never dlclose'd: backends made by it may live until exit
      return;
    }
    l.why = "the CUDA plugin libmoescope_cuda.so is not installed (looked in " + tried + ")";
  });
  return l;
}

}  // namespace

bool cuda_plugin_usable(std::string* reason) {
  const Loaded& l = loaded();
  if (!l.api) {
    if (reason) *reason = l.why;
    return false;
  }
  return l.api->usable(reason);
}

std::unique_ptr<Backend> cuda_plugin_make_backend(std::shared_ptr<const Model> model, const BackendOptions& options) {
  const Loaded& l = loaded();
  if (!l.api) throw Error(l.why);
  return l.api->make(std::move(model), options);
}

}  // namespace moescope
