#pragma once
// The CUDA backend as a plugin (MOESCOPE_CUDA_PLUGIN=ON, the installer's build): the host side of
// the CUDA backend and the kernels are built into libmoescope_cuda.so, which the engine dlopens on
// first use. A machine without the CUDA runtime/cuBLAS or without a GPU then still starts the
// program (on the CPU backend) instead of failing in the dynamic loader; see installer/README.md.
//
// The plugin is built from the same sources and flags as the program, so C++ types can cross the
// boundary; the version number below guards against a plugin from another build.
#include <memory>
#include <string>

#include "moescope/backend.h"

namespace moescope {

struct CudaPluginApi {
  int version;  // kCudaPluginApiVersion
  bool (*usable)(std::string* reason);
  std::unique_ptr<Backend> (*make)(std::shared_ptr<const Model> model, const BackendOptions& options);
};

// Bump when the layout of Model, Backend or BackendOptions changes incompatibly.
inline constexpr int kCudaPluginApiVersion = 2;  // 2: Backend::sibling

}  // namespace moescope

// Exported by the plugin, looked up with dlsym.
extern "C" const moescope::CudaPluginApi* moescope_cuda_plugin_api();
