#include <spdlog/spdlog.h>

#include "moescope/backend.h"
#include "moescope/error.h"

namespace moescope {

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& options);
#ifdef MOESCOPE_HAVE_CUDA
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const BackendOptions& options);
bool cuda_device_usable(std::string* reason);
#elif defined(MOESCOPE_CUDA_PLUGIN)
// The installer's build: the same backend, in libmoescope_cuda.so (cuda_plugin/plugin_loader.cpp).
std::unique_ptr<Backend> cuda_plugin_make_backend(std::shared_ptr<const Model> model, const BackendOptions& options);
bool cuda_plugin_usable(std::string* reason);
#endif

bool cuda_available(std::string* reason) {
#ifdef MOESCOPE_HAVE_CUDA
  return cuda_device_usable(reason);
#elif defined(MOESCOPE_CUDA_PLUGIN)
  return cuda_plugin_usable(reason);
#else
  if (reason) *reason = "this build of moescope has no CUDA backend";
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(std::shared_ptr<const Model> model, const BackendOptions& options) {
  if (options.kind == "cpu") return make_cpu_backend(std::move(model), options);
  if (options.kind == "cuda" || options.kind == "auto") {
    std::string why;
    if (cuda_available(&why)) {
#ifdef MOESCOPE_HAVE_CUDA
      return make_cuda_backend(std::move(model), options);
#elif defined(MOESCOPE_CUDA_PLUGIN)
      return cuda_plugin_make_backend(std::move(model), options);
#endif
    }
    if (options.kind == "cuda") throw Error("CUDA backend unavailable: " + why + " (use --backend cpu)");
    spdlog::info("using the CPU backend: {}", why);
    return make_cpu_backend(std::move(model), options);
  }
  throw Error("unknown backend '" + options.kind + "' (cpu, cuda, auto)");
}

}  // namespace moescope
