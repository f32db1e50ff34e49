// The one exported symbol of libmoescope_cuda.so (everything else in the plugin is hidden).
#include "cuda_plugin/plugin_api.h"

namespace moescope {
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const BackendOptions& options);
bool cuda_device_usable(std::string* reason);
}  // namespace moescope

extern "C" __attribute__((visibility("default"))) const moescope::CudaPluginApi* moescope_cuda_plugin_api() {
  static const moescope::CudaPluginApi api{moescope::kCudaPluginApiVersion, &moescope::cuda_device_usable,
                                           &moescope::make_cuda_backend};
  return &api;
}
