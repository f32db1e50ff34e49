// Test-only wrappers (moescope/cuda_ops.h): host buffers in, one op on a fresh context, host
// buffers out.
#include "moescope/cuda_ops.h"

#include <algorithm>

#include "argmax.cuh"
#include "attention.cuh"
#include "convert.cuh"
#include "cuda/cuda_context.h"
#include "embed.cuh"
#include "moescope/error.h"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "router.cuh"
#include "swiglu.cuh"

namespace moescope::cuda_ops {
namespace {

using cuda::Context;
using cuda::DeviceBuffer;

template <class T>
DeviceBuffer upload(const Context& ctx, const std::vector<T>& v) {
  DeviceBuffer b(std::max<size_t>(1, v.size()) * sizeof(T));
  if (!v.empty())
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, ctx.stream()));
  return b;
}

template <class T>
std::vector<T> download(const Context& ctx, const DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(v.data(), b.get(), n * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()));
  ctx.sync();
  return v;
}

int g_timing_reps = 0;
double g_last_ms = 0.0;

// The perf mode: after the checked run (whose result is already downloaded), `launch` again
// between events. Ops that work in place only disturb their own buffer.
template <class F>
void time_launches(const Context& ctx, F&& launch) {
  g_last_ms = 0.0;
  if (g_timing_reps <= 0) return;
  launch();  // warm-up
  cudaEvent_t a = nullptr, b = nullptr;
  MOESCOPE_CUDA_CHECK(cudaEventCreate(&a));
  MOESCOPE_CUDA_CHECK(cudaEventCreate(&b));
  MOESCOPE_CUDA_CHECK(cudaEventRecord(a, ctx.stream()));
  for (int i = 0; i < g_timing_reps; ++i) launch();
  MOESCOPE_CUDA_CHECK(cudaEventRecord(b, ctx.stream()));
  MOESCOPE_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0.0f;
  MOESCOPE_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  g_last_ms = double(ms) / g_timing_reps;
}

// A view's values rounded to BF16 bits, as upload_weights stores them.
std::vector<uint16_t> bf16_bits(const TensorView& w) {
  std::vector<float> f(size_t(w.numel()));
  to_f32(w.dtype, w.data, f.data(), w.numel());
  std::vector<uint16_t> b(f.size());
  std::transform(f.begin(), f.end(), b.begin(), f32_to_bf16);
  return b;
}

}  // namespace

void set_timing_reps(int reps) { g_timing_reps = reps; }
double last_kernel_ms() { return g_last_ms; }

void memory_info(size_t* free_bytes, size_t* total_bytes) {
  MOESCOPE_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps, int rows, int d) {
  Context ctx;
  auto dx = upload(ctx, x), dw = upload(ctx, w);
  DeviceBuffer dy(x.size() * sizeof(float));
  auto launch = [&] {
    kernels::rmsnorm(dx.as<float>(), d, 0, 1, dw.as<float>(), eps, dy.as<float>(), d, rows, d, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto y = download<float>(ctx, dy, x.size());
  time_launches(ctx, launch);
  return y;
}

std::vector<float> matmul(const std::vector<float>& x, int n, const TensorView& w, const std::vector<float>* bias) {
  Context ctx;
  const int out = int(w.dim(0)), in = int(w.dim(1));
  auto dx = upload(ctx, x), dw = upload(ctx, bf16_bits(w));
  DeviceBuffer db = bias ? upload(ctx, *bias) : DeviceBuffer();
  DeviceBuffer dy(size_t(n) * out * sizeof(float)), xbf(size_t(n) * in * sizeof(uint16_t));
  cuda::DeviceMatrix m{dw.get(), false, out, in, bias ? db.as<float>() : nullptr};
  auto launch = [&] { cuda::linear(ctx, m, dx.as<float>(), in, n, dy.as<float>(), out, xbf.as<uint16_t>()); };
  launch();
  auto y = download<float>(ctx, dy, size_t(n) * out);
  time_launches(ctx, launch);
  return y;
}

std::vector<float> rope(const std::vector<float>& x, int n_tokens, int heads, int dim, bool interleaved,
                        const std::vector<float>& inv_freq, float attention_factor, int pos0) {
  Context ctx;
  auto dx = upload(ctx, x), df = upload(ctx, inv_freq), dp = upload(ctx, std::vector<int32_t>{pos0});
  auto launch = [&] {
    kernels::rope(dx.as<float>(), heads * dim, 0, dim, heads, dim, interleaved, df.as<float>(), attention_factor,
                  dp.as<int32_t>(), n_tokens, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto y = download<float>(ctx, dx, x.size());
  time_launches(ctx, launch);  // rotates the device copy further; the result is already here
  return y;
}

std::vector<float> swiglu(const std::vector<float>& gate_up, int n, int width) {
  Context ctx;
  auto dx = upload(ctx, gate_up);
  DeviceBuffer dy(size_t(n) * width * sizeof(float));
  auto launch = [&] {
    kernels::swiglu(dx.as<float>(), dy.get(), false, n, width, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto y = download<float>(ctx, dy, size_t(n) * width);
  time_launches(ctx, launch);
  return y;
}

std::vector<float> embed(const TensorView& table, const std::vector<int32_t>& ids) {
  Context ctx;
  const int hidden = int(table.dim(1));
  auto dt = upload(ctx, bf16_bits(table)), di = upload(ctx, ids);
  DeviceBuffer dy(ids.size() * hidden * sizeof(float));
  auto launch = [&] {
    kernels::embed(dt.as<uint16_t>(), di.as<int32_t>(), dy.as<float>(), int(ids.size()), hidden, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto y = download<float>(ctx, dy, ids.size() * hidden);
  time_launches(ctx, launch);
  return y;
}

Routes route(const RouterSpec& r, const std::vector<float>& logits, int n_tokens, const std::vector<float>* bias,
             const RoutingControl& control, int layer) {
  Context ctx;
  const int E = r.n_experts, K = control.effective_top_k(r);
  std::vector<uint8_t> mask(static_cast<size_t>(E));
  for (int e = 0; e < E; ++e) mask[size_t(e)] = control.is_disabled(layer, e);
  auto dl = upload(ctx, logits), dm = upload(ctx, mask);
  DeviceBuffer db = bias ? upload(ctx, *bias) : DeviceBuffer();
  DeviceBuffer di(size_t(n_tokens) * K * 4), dw(size_t(n_tokens) * K * 4), dp(size_t(n_tokens) * E * 4);
  kernels::RouterParams p;
  p.n_experts = E, p.top_k = K, p.sigmoid = r.scoring == ScoreFunc::Sigmoid;
  p.group_score = r.group_score == GroupScore::None ? 0 : r.group_score == GroupScore::Max ? 1 : 2;
  p.n_group = r.n_group, p.topk_group = r.topk_group;
  p.renormalize = r.renormalize, p.scale_after_renorm = r.scale_after_renorm, p.scaling = r.scaling;
  p.disabled = dm.as<uint8_t>();
  p.forced_expert = control.forced_expert >= 0 && (control.forced_layer < 0 || control.forced_layer == layer)
                        ? control.forced_expert
                        : -1;
  const bool use_bias = bias && r.correction_bias && !control.ignore_bias;
  auto launch = [&] {
    kernels::route(p, dl.as<float>(), use_bias ? db.as<float>() : nullptr, n_tokens, di.as<int32_t>(),
                   dw.as<float>(), K, dp.as<float>(), E, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  Routes out;
  out.ids = download<int32_t>(ctx, di, size_t(n_tokens) * K);
  out.weights = download<float>(ctx, dw, size_t(n_tokens) * K);
  out.probs = download<float>(ctx, dp, size_t(n_tokens) * E);
  time_launches(ctx, launch);
  return out;
}

std::vector<float> attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                             int n_tokens, int pos0, int n_heads, int n_kv, int head_dim, float scale, int window,
                             int span) {
  Context ctx;
  const int len = pos0 + n_tokens, kd = n_kv * head_dim, values = 2 * kd, block = 16;
  const int n_blocks = (len + block - 1) / block;
  // Cache rows [K | V], stored in reversed block order so the block table is really used.
  std::vector<float> cache(size_t(n_blocks) * block * values, 0.0f);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int b = 0; b < n_blocks; ++b) table[size_t(b)] = n_blocks - 1 - b;
  for (int p = 0; p < len; ++p) {
    float* row = cache.data() + (size_t(table[size_t(p / block)]) * block + p % block) * values;
    std::copy_n(k.data() + size_t(p) * kd, kd, row);
    std::copy_n(v.data() + size_t(p) * kd, kd, row + kd);
  }
  auto dq = upload(ctx, q), dc = upload(ctx, cache), dt = upload(ctx, table);
  auto dp = upload(ctx, std::vector<int32_t>{pos0});
  DeviceBuffer dout(size_t(n_tokens) * n_heads * head_dim * sizeof(float));
  kernels::AttentionArgs a{};
  a.q = dq.as<float>(), a.q_stride = n_heads * head_dim, a.q_head_stride = head_dim;
  a.kv = kernels::KvLayer{dc.as<float>(), dt.as<int32_t>(), block, values, (long long)block * values};
  a.k_offset = 0, a.k_head_stride = head_dim, a.dk = head_dim;
  a.v_offset = kd, a.v_head_stride = head_dim, a.dv = head_dim;
  a.n_heads = n_heads, a.group = n_heads / n_kv, a.scale = scale, a.window = window;
  a.pos0 = dp.as<int32_t>(), a.first = 0, a.n_tokens = n_tokens;
  a.out = dout.as<float>(), a.out_stride = n_heads * head_dim;
  const int visible = window > 0 ? std::min(window, len) : len;
  const int splits = (visible + span - 1) / span;
  DeviceBuffer partial(size_t(kernels::attention_partial_floats(a, splits)) * sizeof(float));
  auto launch = [&] {
    kernels::attention(a, span, splits, partial.as<float>(), ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto y = download<float>(ctx, dout, size_t(n_tokens) * n_heads * head_dim);
  time_launches(ctx, launch);
  return y;
}

std::vector<int32_t> argmax(const std::vector<float>& logits, int rows, int vocab) {
  Context ctx;
  auto dl = upload(ctx, logits);
  DeviceBuffer di(size_t(rows) * sizeof(int32_t));
  auto launch = [&] {
    kernels::argmax(dl.as<float>(), vocab, rows, di.as<int32_t>(), ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto y = download<int32_t>(ctx, di, size_t(rows));
  time_launches(ctx, launch);
  return y;
}

}  // namespace moescope::cuda_ops
