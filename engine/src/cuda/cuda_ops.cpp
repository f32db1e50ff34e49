// Test-only wrappers (moescope/cuda_ops.h): host buffers in, one op on a fresh context, host
// buffers out.
#include "moescope/cuda_ops.h"

#include <algorithm>

#include "add_bias.cuh"
#include "argmax.cuh"
#include "attention.cuh"
#include "clamp.cuh"
#include "convert.cuh"
#include "cuda/cuda_context.h"
#include "delta_net.cuh"
#include "embed.cuh"
#include "kv_store.cuh"
#include "mla.cuh"
#include "moe_gemv.cuh"
#include "moe_group.cuh"
#include "moescope/error.h"
#include "output_gate.cuh"
#include "quant_dequant.cuh"
#include "quant_gemv.cuh"
#include "random_init.cuh"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "router.cuh"
#include "shared_expert.cuh"
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

// A block-quantised view's bytes, on the device as they are.
DeviceBuffer upload_blocks(const Context& ctx, const TensorView& w) {
  if (!dtype_is_quantized(w.dtype) || !kernels::quant_supported(w.dtype))
    throw Error(std::string("cuda_ops: not a block type the kernels read: ").append(dtype_name(w.dtype)));
  DeviceBuffer b(std::max<size_t>(1, w.nbytes()));
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(b.get(), w.data, w.nbytes(), cudaMemcpyHostToDevice, ctx.stream()));
  return b;
}

std::vector<float> widen(const std::vector<uint16_t>& b) {
  std::vector<float> f(b.size());
  std::transform(b.begin(), b.end(), f.begin(), bf16_to_f32);
  return f;
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

std::vector<float> quant_matmul(const std::vector<float>& x, int n, const TensorView& w,
                                const std::vector<float>* bias) {
  Context ctx;
  const int out = int(w.dim(0)), in = int(w.dim(1));
  auto dx = upload(ctx, x);
  DeviceBuffer dw = upload_blocks(ctx, w);
  DeviceBuffer db = bias ? upload(ctx, *bias) : DeviceBuffer();
  DeviceBuffer dy(size_t(n) * out * sizeof(float)), xbf(size_t(n) * in * sizeof(uint16_t));
  DeviceBuffer wq(n > kernels::kGemvMaxTokens ? size_t(out) * in * sizeof(uint16_t) : 1);
  const float* b = bias ? db.as<float>() : nullptr;
  // The backend's path: the block matvec for n <= 4, else widened into wq and cuBLAS.
  const cuda::DeviceMatrix m{dw.get(), false, out, in, b, w.dtype};
  auto launch = [&] {
    cuda::linear(ctx, m, dx.as<float>(), in, n, dy.as<float>(), out, xbf.as<uint16_t>(), wq.as<uint16_t>());
  };
  launch();
  auto y = download<float>(ctx, dy, size_t(n) * out);
  time_launches(ctx, launch);
  return y;
}

std::vector<float> quant_dequantize(const TensorView& w, bool to_f32) {
  Context ctx;
  DeviceBuffer dw = upload_blocks(ctx, w);
  const size_t n = size_t(w.numel());
  DeviceBuffer dy(std::max<size_t>(1, n) * (to_f32 ? 4 : 2));
  auto launch = [&] {
    kernels::quant_dequantize(dw.get(), w.dtype, w.numel() / dtype_block_elems(w.dtype), dy.get(), to_f32,
                              ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  std::vector<float> y = to_f32 ? download<float>(ctx, dy, n) : widen(download<uint16_t>(ctx, dy, n));
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
  // An F32 table stays fp32 (as the weight upload keeps non-BF16 embeddings); others go to BF16.
  const bool f32 = table.dtype == DType::F32;
  std::vector<float> f(f32 ? size_t(table.numel()) : 0);
  if (f32) to_f32(table.dtype, table.data, f.data(), table.numel());
  auto dt = f32 ? upload(ctx, f) : upload(ctx, bf16_bits(table)), di = upload(ctx, ids);
  DeviceBuffer dy(ids.size() * hidden * sizeof(float));
  auto launch = [&] {
    if (f32) kernels::embed(dt.as<float>(), di.as<int32_t>(), dy.as<float>(), int(ids.size()), hidden, ctx.stream());
    else kernels::embed(dt.as<uint16_t>(), di.as<int32_t>(), dy.as<float>(), int(ids.size()), hidden, ctx.stream());
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
  const rules::RouterRule rule = make_router_rule(r, control, layer, bias != nullptr);
  auto launch = [&] {
    kernels::route(rule, dm.as<uint8_t>(), dl.as<float>(), bias ? db.as<float>() : nullptr, n_tokens,
                   di.as<int32_t>(), dw.as<float>(), K, dp.as<float>(), E, ctx.stream());
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
                             int span, const std::vector<float>* sinks) {
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
  DeviceBuffer ds = sinks ? upload(ctx, *sinks) : DeviceBuffer();
  DeviceBuffer dout(size_t(n_tokens) * n_heads * head_dim * sizeof(float));
  kernels::AttentionArgs a{};
  a.q = dq.as<float>(), a.q_stride = n_heads * head_dim, a.q_head_stride = head_dim;
  a.kv = kernels::KvLayer{dc.as<float>(), dt.as<int32_t>(), block, values, (long long)block * values};
  a.k_offset = 0, a.k_head_stride = head_dim, a.dk = head_dim;
  a.v_offset = kd, a.v_head_stride = head_dim, a.dv = head_dim;
  a.n_heads = n_heads, a.group = n_heads / n_kv, a.scale = scale, a.window = window;
  a.pos0 = dp.as<int32_t>(), a.first = 0, a.n_tokens = n_tokens;
  a.out = dout.as<float>(), a.out_stride = n_heads * head_dim;
  a.sinks = sinks ? ds.as<float>() : nullptr;
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

std::vector<float> add_bias(const std::vector<float>& y, const std::vector<float>& bias, int n_tokens, int out) {
  Context ctx;
  auto dy = upload(ctx, y), db = upload(ctx, bias);
  auto launch = [&] {
    kernels::add_bias(dy.as<float>(), out, db.as<float>(), n_tokens, out, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dy, y.size());
  time_launches(ctx, launch);  // adds again on the device copy; the result is already here
  return r;
}

std::vector<float> clamp(const std::vector<float>& x, float limit) {
  Context ctx;
  auto dx = upload(ctx, x);
  auto launch = [&] {
    kernels::clamp(dx.as<float>(), (long long)x.size(), limit, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dx, x.size());
  time_launches(ctx, launch);
  return r;
}

std::vector<float> convert(const TensorView& src, bool to_f32) {
  Context ctx;
  const size_t n = size_t(src.numel());
  kernels::SrcType type;
  size_t elem;
  switch (src.dtype) {
    case DType::F32: type = kernels::SrcType::F32, elem = 4; break;
    case DType::F16: type = kernels::SrcType::F16, elem = 2; break;
    case DType::BF16: type = kernels::SrcType::BF16, elem = 2; break;
    default: throw Error("cuda_ops::convert: F32, F16 or BF16 only");
  }
  DeviceBuffer ds(std::max<size_t>(1, n * elem)), dd(std::max<size_t>(1, n * (to_f32 ? 4 : 2)));
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(ds.get(), src.data, n * elem, cudaMemcpyHostToDevice, ctx.stream()));
  auto launch = [&] {
    kernels::convert(ds.get(), type, dd.get(), to_f32, (long long)n, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  std::vector<float> r = to_f32 ? download<float>(ctx, dd, n) : widen(download<uint16_t>(ctx, dd, n));
  time_launches(ctx, launch);
  return r;
}

std::vector<float> to_bf16_rows(const std::vector<float>& x, int stride, int rows, int cols) {
  Context ctx;
  auto dx = upload(ctx, x);
  DeviceBuffer dy(std::max<size_t>(1, size_t(rows) * cols * 2));
  auto launch = [&] {
    kernels::to_bf16_rows(dx.as<float>(), stride, dy.as<uint16_t>(), rows, cols, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = widen(download<uint16_t>(ctx, dy, size_t(rows) * cols));
  time_launches(ctx, launch);
  return r;
}

std::vector<float> kv_store(const std::vector<float>& rows, int n_tokens, int values, int pos0, int block_tokens) {
  Context ctx;
  const int len = pos0 + n_tokens, n_blocks = (len + block_tokens - 1) / block_tokens;
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int b = 0; b < n_blocks; ++b) table[size_t(b)] = n_blocks - 1 - b;  // reversed: the table is used
  const size_t cache_floats = size_t(n_blocks) * block_tokens * values;
  auto dc = upload(ctx, std::vector<float>(cache_floats, 0.0f)), dt = upload(ctx, table), dr = upload(ctx, rows);
  auto dp = upload(ctx, std::vector<int32_t>{pos0});
  const kernels::KvLayer kv{dc.as<float>(), dt.as<int32_t>(), block_tokens, values,
                            (long long)block_tokens * values};
  auto launch = [&] {
    kernels::kv_store(kv, dr.as<float>(), values, dp.as<int32_t>(), n_tokens, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  const auto cache = download<float>(ctx, dc, cache_floats);
  time_launches(ctx, launch);
  std::vector<float> logical(size_t(len) * values);
  for (int p = 0; p < len; ++p)
    std::copy_n(cache.data() + (size_t(table[size_t(p / block_tokens)]) * block_tokens + p % block_tokens) * values,
                values, logical.data() + size_t(p) * values);
  return logical;
}

std::vector<float> mla_q_absorb(const std::vector<float>& q, const TensorView& kv_b, int n_tokens, int n_heads,
                                int nope, int rope, int v_head) {
  Context ctx;
  const int C = int(kv_b.dim(1));
  const kernels::MlaDims d{n_heads, nope, rope, v_head, C};
  auto dq = upload(ctx, q), dw = upload(ctx, bf16_bits(kv_b));
  const size_t out_n = size_t(n_tokens) * n_heads * (C + rope);
  DeviceBuffer dout(out_n * sizeof(float));
  auto launch = [&] {
    kernels::mla_q_absorb(d, dq.as<float>(), n_heads * (nope + rope), dw.as<uint16_t>(), dout.as<float>(), n_tokens,
                          ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dout, out_n);
  time_launches(ctx, launch);
  return r;
}

std::vector<float> mla_v_up(const std::vector<float>& o_lat, const TensorView& kv_b, int n_tokens, int n_heads,
                            int nope, int v_head) {
  Context ctx;
  const int C = int(kv_b.dim(1));
  const kernels::MlaDims d{n_heads, nope, 0, v_head, C};
  auto dl = upload(ctx, o_lat), dw = upload(ctx, bf16_bits(kv_b));
  const size_t out_n = size_t(n_tokens) * n_heads * v_head;
  DeviceBuffer dout(out_n * sizeof(float));
  auto launch = [&] {
    kernels::mla_v_up(d, dl.as<float>(), dw.as<uint16_t>(), dout.as<float>(), n_tokens, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dout, out_n);
  time_launches(ctx, launch);
  return r;
}

MoeDecode moe_experts(const std::vector<float>& x, int n_tokens, const TensorView& gate_up, const TensorView& down,
                      int n_experts, const std::vector<int32_t>& ids, const std::vector<float>& weights, int top_k,
                      const MoeExtras* extras) {
  Context ctx;
  const int H = int(gate_up.dim(1)), W = int(down.dim(1));
  if (gate_up.dim(0) != int64_t(n_experts) * 2 * W || down.dim(0) != int64_t(n_experts) * H)
    throw Error("cuda_ops::moe_experts: gate_up [E·2W, H] and down [E·H, W] expected");
  // A block type stays in blocks (as the backend stacks quantised experts); others become BF16.
  const bool qgu = dtype_is_quantized(gate_up.dtype), qd = dtype_is_quantized(down.dtype);
  auto dx = upload(ctx, x);
  DeviceBuffer dgu = qgu ? upload_blocks(ctx, gate_up) : upload(ctx, bf16_bits(gate_up));
  DeviceBuffer dd = qd ? upload_blocks(ctx, down) : upload(ctx, bf16_bits(down));
  auto di = upload(ctx, ids), dwt = upload(ctx, weights);
  DeviceBuffer dh(size_t(n_tokens) * top_k * W * sizeof(float)), dy(size_t(n_tokens) * H * sizeof(float));
  kernels::ExpertExtras ex;
  DeviceBuffer dgb, ddb;
  if (extras) {
    if (!extras->gate_up_bias.empty()) dgb = upload(ctx, extras->gate_up_bias), ex.gate_up_bias = dgb.as<float>();
    if (!extras->down_bias.empty()) ddb = upload(ctx, extras->down_bias), ex.down_bias = ddb.as<float>();
    ex.clamped = extras->clamped, ex.alpha = extras->alpha, ex.limit = extras->limit;
  }
  auto launch = [&] {
    if (qgu)
      kernels::quant_moe_gate_up(dx.as<float>(), H, dgu.get(), gate_up.dtype, W, di.as<int32_t>(), dwt.as<float>(),
                                 top_k, top_k, dh.as<float>(), n_tokens, ctx.stream(), ex);
    else
      kernels::moe_gate_up(dx.as<float>(), H, dgu.as<uint16_t>(), W, di.as<int32_t>(), dwt.as<float>(), top_k,
                           top_k, dh.as<float>(), n_tokens, ctx.stream(), ex);
    if (qd)
      kernels::quant_moe_down(dh.as<float>(), W, dd.get(), down.dtype, H, di.as<int32_t>(), dwt.as<float>(), top_k,
                              top_k, dy.as<float>(), n_tokens, false, ctx.stream(), ex);
    else
      kernels::moe_down(dh.as<float>(), W, dd.as<uint16_t>(), H, di.as<int32_t>(), dwt.as<float>(), top_k, top_k,
                        dy.as<float>(), n_tokens, false, ctx.stream(), ex);
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  MoeDecode r;
  r.h = download<float>(ctx, dh, size_t(n_tokens) * top_k * W);
  r.y = download<float>(ctx, dy, size_t(n_tokens) * H);
  time_launches(ctx, launch);
  return r;
}

MoeGroups moe_group(const std::vector<int32_t>& ids, const std::vector<float>& weights, int n_tokens, int top_k,
                    int n_experts, const std::vector<float>& x, int hidden, const std::vector<float>& expert_out) {
  Context ctx;
  const size_t pairs = size_t(n_tokens) * top_k;
  auto di = upload(ctx, ids), dw = upload(ctx, weights), dx = upload(ctx, x), de = upload(ctx, expert_out);
  DeviceBuffer dcounts(size_t(n_experts) * 4), doffsets(size_t(n_experts) * 4), drows(std::max<size_t>(1, pairs) * 4),
      dslot(std::max<size_t>(1, pairs) * 4), dxg(std::max<size_t>(1, pairs) * hidden * 2),
      dy(size_t(n_tokens) * hidden * sizeof(float));
  // Rows past the real pair count are never read by a matmul, but the gather reads rows[i]: -1.
  MOESCOPE_CUDA_CHECK(cudaMemsetAsync(drows.get(), 0xff, drows.size(), ctx.stream()));
  auto launch = [&] {
    kernels::moe_group(di.as<int32_t>(), dw.as<float>(), top_k, n_tokens, top_k, n_experts, dcounts.as<int32_t>(),
                       doffsets.as<int32_t>(), drows.as<int32_t>(), dslot.as<int32_t>(), ctx.stream());
    kernels::moe_gather(dx.as<float>(), hidden, drows.as<int32_t>(), int(pairs), top_k, dxg.as<uint16_t>(),
                        ctx.stream());
    kernels::moe_combine(de.as<float>(), dslot.as<int32_t>(), dw.as<float>(), top_k, top_k, dy.as<float>(), hidden,
                         n_tokens, false, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  MoeGroups r;
  r.counts = download<int32_t>(ctx, dcounts, size_t(n_experts));
  r.offsets = download<int32_t>(ctx, doffsets, size_t(n_experts));
  r.slot_row = download<int32_t>(ctx, dslot, pairs);
  int total = 0;
  for (int c : r.counts) total += c;
  r.rows = download<int32_t>(ctx, drows, size_t(total));
  r.gathered = widen(download<uint16_t>(ctx, dxg, size_t(total) * hidden));
  r.combined = download<float>(ctx, dy, size_t(n_tokens) * hidden);
  time_launches(ctx, launch);
  return r;
}

std::vector<float> shared_expert_add(const std::vector<float>& x, const std::vector<float>& gate,
                                     const std::vector<float>& s, const std::vector<float>& y, int hidden,
                                     int n_tokens, std::vector<float>* gates_out) {
  Context ctx;
  auto dx = upload(ctx, x), ds = upload(ctx, s), dy = upload(ctx, y);
  DeviceBuffer dg = gate.empty() ? DeviceBuffer() : upload(ctx, gate);
  DeviceBuffer dgo(std::max<size_t>(1, size_t(n_tokens)) * sizeof(float));
  auto launch = [&] {
    kernels::shared_expert_add(dx.as<float>(), gate.empty() ? nullptr : dg.as<float>(), ds.as<float>(),
                               dy.as<float>(), hidden, n_tokens, ctx.stream(), gates_out ? dgo.as<float>() : nullptr, 1);
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dy, y.size());
  if (gates_out) *gates_out = download<float>(ctx, dgo, size_t(n_tokens));
  time_launches(ctx, launch);
  return r;
}

std::vector<float> fill_uniform(long long n, uint64_t seed, float scale, bool f32) {
  Context ctx;
  DeviceBuffer d(std::max<size_t>(1, size_t(n) * (f32 ? 4 : 2)));
  auto launch = [&] {
    kernels::fill_uniform(d.get(), f32, n, seed, scale, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = f32 ? download<float>(ctx, d, size_t(n)) : widen(download<uint16_t>(ctx, d, size_t(n)));
  time_launches(ctx, launch);
  return r;
}

std::vector<float> add_constant(const std::vector<float>& x, float value) {
  Context ctx;
  auto dx = upload(ctx, x);
  auto launch = [&] {
    kernels::add_constant(dx.as<float>(), (long long)x.size(), value, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dx, x.size());
  time_launches(ctx, launch);  // adds again on the device copy; the result is already here
  return r;
}

std::vector<float> swiglu_clamped(const std::vector<float>& gate_up, int n, int width, float alpha, float limit) {
  Context ctx;
  auto din = upload(ctx, gate_up);
  DeviceBuffer dout(std::max<size_t>(1, size_t(n) * width) * sizeof(float));
  auto launch = [&] {
    kernels::swiglu_clamped(din.as<float>(), dout.get(), false, n, width, alpha, limit, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dout, size_t(n) * width);
  time_launches(ctx, launch);
  return r;
}

std::vector<float> output_gate(const std::vector<float>& att, const std::vector<float>& qg, int n_tokens, int heads,
                               int d) {
  Context ctx;
  if (att.size() != size_t(n_tokens) * heads * d || qg.size() != size_t(n_tokens) * heads * 2 * d)
    throw Error("cuda_ops::output_gate: att [n, heads·d] and qg [n, heads, 2, d] expected");
  auto dy = upload(ctx, att), dg = upload(ctx, qg);
  auto launch = [&] {
    kernels::output_gate(dy.as<float>(), heads * d, dg.as<float>() + d, heads * 2 * d, 2 * d, heads, d, n_tokens,
                         ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = download<float>(ctx, dy, att.size());
  time_launches(ctx, launch);  // gates again on the device copy; the result is already here
  return r;
}

DeltaNetResult delta_net(const std::vector<float>& proj, int n_tokens, const DeltaNetDims& d,
                         const std::vector<float>& conv_w, const std::vector<float>& a_log,
                         const std::vector<float>& dt_bias, const std::vector<float>& norm, float eps,
                         const std::vector<int>& chunks) {
  Context ctx;
  const int KD = d.nk * d.dk, VD = d.nv * d.dv, Cc = 2 * KD + VD, A = Cc + VD + 2 * d.nv;
  if (proj.size() != size_t(n_tokens) * A || conv_w.size() != size_t(Cc) * d.kernel ||
      a_log.size() != size_t(d.nv) || dt_bias.size() != size_t(d.nv) || norm.size() != size_t(d.dv))
    throw Error("cuda_ops::delta_net: inconsistent sizes");
  if (d.nk <= 0 || d.nv % d.nk != 0 || 2 * d.dk + d.dv > kernels::kDeltaRuleMaxSmemFloats)
    throw Error("cuda_ops::delta_net: heads the kernel does not take");
  int total = 0;
  for (int c : chunks) total += c;
  if (total != n_tokens) throw Error("cuda_ops::delta_net: the chunks must sum to n_tokens");
  const size_t rec_n = size_t(d.nv) * d.dk * d.dv, conv_n = size_t(d.kernel - 1) * Cc;
  auto dp = upload(ctx, proj), dw = upload(ctx, conv_w), dal = upload(ctx, a_log), ddt = upload(ctx, dt_bias),
       dn = upload(ctx, norm);
  DeviceBuffer drec(std::max<size_t>(1, rec_n) * sizeof(float)), dconv(std::max<size_t>(1, conv_n) * sizeof(float)),
      dcv(std::max<size_t>(1, size_t(n_tokens) * Cc) * sizeof(float)),
      dout(std::max<size_t>(1, size_t(n_tokens) * VD) * sizeof(float));
  auto launch = [&] {
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(drec.get(), 0, drec.size(), ctx.stream()));
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dconv.get(), 0, dconv.size(), ctx.stream()));
    for (int t0 = 0, i = 0; i < int(chunks.size()); t0 += chunks[size_t(i++)]) {
      const int T = chunks[size_t(i)];
      const float* p = dp.as<float>() + size_t(t0) * A;
      kernels::delta_conv(p, A, dw.as<float>(), dconv.as<float>(), dcv.as<float>() + size_t(t0) * Cc, Cc, T, Cc,
                          d.kernel, ctx.stream());
      kernels::DeltaRuleArgs r{};
      r.conv = dcv.as<float>() + size_t(t0) * Cc, r.conv_stride = Cc;
      r.z = p + Cc, r.z_stride = A;
      r.beta = p + Cc + VD, r.a = p + Cc + VD + d.nv, r.gate_stride = A;
      r.a_log = dal.as<float>(), r.dt_bias = ddt.as<float>(), r.norm = dn.as<float>(), r.eps = eps;
      r.state = drec.as<float>();
      r.out = dout.as<float>() + size_t(t0) * VD, r.out_stride = VD;
      r.nk = d.nk, r.nv = d.nv, r.dk = d.dk, r.dv = d.dv, r.n_tokens = T;
      kernels::delta_rule(r, ctx.stream());
      MOESCOPE_CUDA_LAUNCHED();
    }
  };
  launch();
  DeltaNetResult res;
  res.out = download<float>(ctx, dout, size_t(n_tokens) * VD);
  res.recurrent = download<float>(ctx, drec, rec_n);
  res.conv = download<float>(ctx, dconv, conv_n);
  time_launches(ctx, launch);
  return res;
}

std::vector<float> fill_constant(long long n, float value, bool f32) {
  Context ctx;
  DeviceBuffer d(std::max<size_t>(1, size_t(n) * (f32 ? 4 : 2)));
  auto launch = [&] {
    kernels::fill_constant(d.get(), f32, n, value, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  };
  launch();
  auto r = f32 ? download<float>(ctx, d, size_t(n)) : widen(download<uint16_t>(ctx, d, size_t(n)));
  time_launches(ctx, launch);
  return r;
}

}  // namespace moescope::cuda_ops
