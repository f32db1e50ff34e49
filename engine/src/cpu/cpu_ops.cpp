#include "moescope/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "cpu/clones.h"
#include "cpu/gemm.h"
#include "moescope/error.h"

namespace moescope::cpu {

namespace {

MOESCOPE_CLONES float dot_f32(const float* x, const float* w, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += x[i] * w[i];
  return s;
}

MOESCOPE_CLONES float dot_bf16(const float* x, const uint16_t* w, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += x[i] * std::bit_cast<float>(uint32_t(w[i]) << 16);
  return s;
}

float dot_f16(const float* x, const uint16_t* w, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += x[i] * f16_to_f32(w[i]);
  return s;
}

MOESCOPE_CLONES void axpy_f32(float a, const float* w, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += a * w[i];
}

MOESCOPE_CLONES void axpy_bf16(float a, const uint16_t* w, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += a * std::bit_cast<float>(uint32_t(w[i]) << 16);
}

}  // namespace

// Sum of x[n] with 32 independent lanes (four vector accumulators at AVX2 width, two at
// AVX-512) and a software prefetch ahead of the loads: a read loop that keeps enough loads in
// flight to reach the memory bandwidth, the figure the decode roofline divides by.
MOESCOPE_CLONES float read_sum(const float* x, size_t n) {
  float acc[32] = {};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __builtin_prefetch(x + i + 512);
#pragma omp simd
    for (int j = 0; j < 32; ++j) acc[j] += x[i + size_t(j)];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += x[i];
  for (float a : acc) s += a;
  return s;
}

void prefetch(const void* p, size_t bytes) {
  const auto* b = static_cast<const char*>(p);
  for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(b + i, 0, 2);
}

float dot(const float* x, const void* w, DType dt, int len) {
  switch (dt) {
    case DType::F32: return dot_f32(x, static_cast<const float*>(w), len);
    case DType::BF16: return dot_bf16(x, static_cast<const uint16_t*>(w), len);
    case DType::F16: return dot_f16(x, static_cast<const uint16_t*>(w), len);
    default: throw Error(std::string("dot: weights of type ") + dtype_name(dt) + " need dequantising first");
  }
}

void axpy(float a, const void* w, DType dt, float* y, int len) {
  switch (dt) {
    case DType::F32: axpy_f32(a, static_cast<const float*>(w), y, len); return;
    case DType::BF16: axpy_bf16(a, static_cast<const uint16_t*>(w), y, len); return;
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w);
      for (int i = 0; i < len; ++i) y[i] += a * f16_to_f32(p[i]);
      return;
    }
    default: throw Error(std::string("axpy: weights of type ") + dtype_name(dt) + " need dequantising first");
  }
}

void matmul(ThreadPool& pool, const float* x, int n, const TensorView& w, const TensorView* bias, float* y,
            int x_stride, int y_stride) {
  const int out = int(w.shape[0]), in = int(w.shape[1]);
  if (x_stride == 0) x_stride = in;
  if (y_stride == 0) y_stride = out;
  // Work unit: a block of kGemmRowBlock rows of W for all n rows of x (gemm.h tiles it).
  const RowsIn xr{nullptr, x, size_t(x_stride)};
  const int blocks = (out + kGemmRowBlock - 1) / kGemmRowBlock;
  const uint64_t tag = new_pack_tags();  // x is packed once per thread for all its blocks
  pool.parallel_for(blocks, [&](int b0, int b1, int) {
    thread_local XPack pack;
    pack.tag = tag;
    const int r0 = b0 * kGemmRowBlock, r1 = std::min(out, b1 * kGemmRowBlock);
    // One block at a time, so that its rows stay in cache while every x row passes over them.
    for (int r = r0; r < r1; r += kGemmRowBlock)
      gemm_rows(xr, n, w, r, std::min(r1, r + kGemmRowBlock), y + r, size_t(y_stride), &pack);
    if (bias) {
      for (int t = 0; t < n; ++t) {
        float* yt = y + size_t(t) * y_stride;
        for (int r = r0; r < r1; ++r) {
          float bv;
          to_f32(bias->dtype, static_cast<const uint8_t*>(bias->data) + size_t(r) * dtype_size(bias->dtype), &bv, 1);
          yt[r] += bv;
        }
      }
    }
  });
}

void rmsnorm(const float* x, const TensorView& w, float eps, float* y, int n, int d, float offset) {
  const size_t elt = dtype_size(w.dtype);
  for (int t = 0; t < n; ++t) {
    const float* xt = x + size_t(t) * d;
    float* yt = y + size_t(t) * d;
    float ss = 0.0f;
    for (int i = 0; i < d; ++i) ss += xt[i] * xt[i];
    const float inv = 1.0f / std::sqrt(ss / float(d) + eps);
    const auto* wb = static_cast<const uint8_t*>(w.data);
    for (int i = 0; i < d; ++i) {
      float wi;
      to_f32(w.dtype, wb + size_t(i) * elt, &wi, 1);
      yt[i] = (offset + wi) * (xt[i] * inv);
    }
  }
}

void rope(float* x, const float* cos, const float* sin, int dim, bool interleaved) {
  const int half = dim / 2;
  if (interleaved) {
    for (int i = 0; i < half; ++i) {
      const float a = x[2 * i], b = x[2 * i + 1];
      x[2 * i] = a * cos[i] - b * sin[i];
      x[2 * i + 1] = b * cos[i] + a * sin[i];
    }
  } else {
    for (int i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half];
      x[i] = a * cos[i] - b * sin[i];
      x[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

void rope_tables(const int* pos, int n, const float* inv_freq, int half, float attention_factor, float* cos,
                 float* sin) {
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < half; ++i) {
      const float angle = float(pos[t]) * inv_freq[i];  // fp32 product, as transformers computes it
      cos[size_t(t) * half + i] = std::cos(angle) * attention_factor;
      sin[size_t(t) * half + i] = std::sin(angle) * attention_factor;
    }
}

void silu_mul(float* g, const float* u, int n) {
  for (int i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void clamped_swiglu(float* g, const float* u, int n, float alpha, float limit) {
  for (int i = 0; i < n; ++i) {
    const float gc = std::min(g[i], limit), uc = std::clamp(u[i], -limit, limit);
    g[i] = (uc + 1.0f) * gc / (1.0f + std::exp(-alpha * gc));
  }
}

void softmax(float* x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void embed(const TensorView& table, int id, float* out) {
  const int64_t hidden = table.shape[1];
  // dtype_bytes: rows of a block type are whole blocks (the loader widens a table whose are not).
  to_f32(table.dtype, static_cast<const uint8_t*>(table.data) + dtype_bytes(table.dtype, int64_t(id) * hidden), out,
         hidden);
}

}  // namespace moescope::cpu
