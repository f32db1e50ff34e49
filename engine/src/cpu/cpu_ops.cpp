#include "moescope/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moescope::cpu {

// The hot loops are compiled for AVX-512, AVX2+FMA and baseline x86-64, and picked at run time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define MOESCOPE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MOESCOPE_CLONES
#endif

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

// Four rows of W against one x: x is loaded once per element for four outputs.
MOESCOPE_CLONES void dot4_bf16(const float* x, const uint16_t* w, int n, int ld, float* out) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const uint16_t *w0 = w, *w1 = w + ld, *w2 = w + 2 * ld, *w3 = w + 3 * ld;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int i = 0; i < n; ++i) {
    const float xi = x[i];
    s0 += xi * std::bit_cast<float>(uint32_t(w0[i]) << 16);
    s1 += xi * std::bit_cast<float>(uint32_t(w1[i]) << 16);
    s2 += xi * std::bit_cast<float>(uint32_t(w2[i]) << 16);
    s3 += xi * std::bit_cast<float>(uint32_t(w3[i]) << 16);
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

MOESCOPE_CLONES void dot4_f32(const float* x, const float* w, int n, int ld, float* out) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const float *w0 = w, *w1 = w + ld, *w2 = w + 2 * ld, *w3 = w + 3 * ld;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int i = 0; i < n; ++i) {
    const float xi = x[i];
    s0 += xi * w0[i];
    s1 += xi * w1[i];
    s2 += xi * w2[i];
    s3 += xi * w3[i];
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// Widens `rows` rows of W (any dtype) into dst[rows, in] fp32.
void widen_rows(const TensorView& w, int row0, int rows, int in, float* dst) {
  const size_t elt = dtype_size(w.dtype);
  to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + size_t(row0) * size_t(in) * elt, dst,
         int64_t(rows) * in);
}

thread_local std::vector<float> tls_rows;

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

float dot(const float* x, const void* w, DType dt, int len) {
  switch (dt) {
    case DType::F32: return dot_f32(x, static_cast<const float*>(w), len);
    case DType::BF16: return dot_bf16(x, static_cast<const uint16_t*>(w), len);
    case DType::F16: return dot_f16(x, static_cast<const uint16_t*>(w), len);
  }
  return 0.0f;
}

void axpy(float a, const void* w, DType dt, float* y, int len) {
  switch (dt) {
    case DType::F32: {
      const float* p = static_cast<const float*>(w);
      for (int i = 0; i < len; ++i) y[i] += a * p[i];
      return;
    }
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w);
      for (int i = 0; i < len; ++i) y[i] += a * bf16_to_f32(p[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w);
      for (int i = 0; i < len; ++i) y[i] += a * f16_to_f32(p[i]);
      return;
    }
  }
}

void matmul(ThreadPool& pool, const float* x, int n, const TensorView& w, const TensorView* bias, float* y,
            int x_stride, int y_stride) {
  const int out = int(w.shape[0]), in = int(w.shape[1]);
  if (x_stride == 0) x_stride = in;
  if (y_stride == 0) y_stride = out;
  const size_t elt = dtype_size(w.dtype);
  const auto* wbytes = static_cast<const uint8_t*>(w.data);
  // Work unit: a block of kRows output rows. One token (decode) streams W once, four rows at a
  // time; several tokens (prefill) widen a block of rows to fp32 once and reuse it per token.
  constexpr int kRows = 16;
  const int blocks = (out + kRows - 1) / kRows;
  pool.parallel_for(blocks, [&](int b0, int b1, int) {
    for (int b = b0; b < b1; ++b) {
      const int r0 = b * kRows, r1 = std::min(out, r0 + kRows);
      if (n == 1 && w.dtype != DType::F16) {
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
          if (w.dtype == DType::BF16)
            dot4_bf16(x, reinterpret_cast<const uint16_t*>(wbytes + size_t(r) * in * elt), in, in, y + r);
          else
            dot4_f32(x, reinterpret_cast<const float*>(wbytes + size_t(r) * in * elt), in, in, y + r);
        }
        for (; r < r1; ++r) y[r] = dot(x, wbytes + size_t(r) * in * elt, w.dtype, in);
      } else {
        const int rows = r1 - r0;
        const float* wf;
        if (w.dtype == DType::F32) {
          wf = reinterpret_cast<const float*>(wbytes) + size_t(r0) * in;
        } else {
          if (tls_rows.size() < size_t(kRows) * in) tls_rows.resize(size_t(kRows) * in);
          widen_rows(w, r0, rows, in, tls_rows.data());
          wf = tls_rows.data();
        }
        for (int t = 0; t < n; ++t) {
          const float* xt = x + size_t(t) * x_stride;
          float* yt = y + size_t(t) * y_stride;
          int r = 0;
          for (; r + 4 <= rows; r += 4) dot4_f32(xt, wf + size_t(r) * in, in, in, yt + r0 + r);
          for (; r < rows; ++r) yt[r0 + r] = dot_f32(xt, wf + size_t(r) * in, in);
        }
      }
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
    }
  });
}

void rmsnorm(const float* x, const TensorView& w, float eps, float* y, int n, int d) {
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
      yt[i] = wi * (xt[i] * inv);
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

void softmax(float* x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void embed(const TensorView& table, int id, float* out) {
  const int hidden = int(table.shape[1]);
  const size_t elt = dtype_size(table.dtype);
  to_f32(table.dtype, static_cast<const uint8_t*>(table.data) + size_t(id) * hidden * elt, out, hidden);
}

}  // namespace moescope::cpu
