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

const RoutingControl& begin_forward(const ModelSpec& s, std::span<const int32_t> tokens, int n_cached, int capacity,
                                    const ForwardOptions& opt, ForwardResult& out) {
  const int n = int(tokens.size());
  if (n == 0) throw Error("forward: no tokens");
  for (int32_t id : tokens)
    if (id < 0 || id >= s.vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                  std::to_string(s.vocab_size) + ")");
  if (int64_t(n_cached) + n > capacity)
    throw Error("the prompt needs " + std::to_string(int64_t(n_cached) + n) + " tokens but the context holds " +
                std::to_string(capacity));
  static const RoutingControl kNoControl;
  const RoutingControl& control = opt.control ? *opt.control : kNoControl;
  const int n_moe = s.n_moe_layers();
  const int K = n_moe ? control.effective_top_k(s.moe.router) : 0;
  out.n_tokens = n;
  out.vocab = s.vocab_size;
  out.n_moe_layers = n_moe;
  out.top_k = K;
  out.logits.resize(size_t(opt.all_logits ? n : 1) * size_t(s.vocab_size));
  out.expert_ids.resize(size_t(n) * size_t(n_moe) * size_t(K));
  out.expert_weights.resize(size_t(n) * size_t(n_moe) * size_t(K));
  out.probs.resize(opt.router_probs ? size_t(n) * size_t(n_moe) * size_t(s.moe.router.n_experts) : 0);
  return control;
}

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
