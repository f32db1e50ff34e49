#pragma once
// The CUDA backend's runtime context: one device, one stream, one cuBLAS handle and its
// workspace, created on first use and released by RAII; owning device/pinned buffers; the
// checked-call macros that turn every CUDA/cuBLAS failure into a moescope::Error naming the call,
// file and line.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "moescope/tensor.h"

namespace moescope::cuda {

[[noreturn]] void throw_cuda(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas(cublasStatus_t st, const char* expr, const char* file, int line);

#define MOESCOPE_CUDA_CHECK(expr)                                                          \
  do {                                                                                     \
    const cudaError_t moescope_err_ = (expr);                                              \
    if (moescope_err_ != cudaSuccess) ::moescope::cuda::throw_cuda(moescope_err_, #expr, __FILE__, __LINE__); \
  } while (0)
#define MOESCOPE_CUBLAS_CHECK(expr)                                                        \
  do {                                                                                     \
    const cublasStatus_t moescope_st_ = (expr);                                            \
    if (moescope_st_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::moescope::cuda::throw_cublas(moescope_st_, #expr, __FILE__, __LINE__);             \
  } while (0)
// After a kernel launcher: reports launch errors (bad configuration, missing kernel image).
#define MOESCOPE_CUDA_LAUNCHED() MOESCOPE_CUDA_CHECK(cudaGetLastError())

// Device memory, freed on destruction. Move-only.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return p_; }
  template <class T> T* as() const { return static_cast<T*>(p_); }
  size_t size() const { return n_; }

private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// Page-locked host memory (asynchronous copies), freed on destruction. Move-only.
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* get() const { return p_; }
  template <class T> T* as() const { return static_cast<T*>(p_); }
  size_t size() const { return n_; }

private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// Carves aligned pieces out of one allocation; with `base` null it only adds up the size, so
// the same code both plans (memory check) and assigns.
class Arena {
public:
  explicit Arena(void* base = nullptr) : base_(static_cast<char*>(base)) {}
  template <class T> T* take(size_t count) {
    const size_t at = used_;
    used_ += (count * sizeof(T) + 255) / 256 * 256;
    return base_ ? reinterpret_cast<T*>(base_ + at) : nullptr;
  }
  size_t used() const { return used_; }

private:
  char* base_;
  size_t used_ = 0;
};

class Context {
public:
  explicit Context(int device = 0);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  const cudaDeviceProp& props() const { return props_; }
  std::string device_name() const { return props_.name; }
  int device() const { return device_; }
  size_t workspace_bytes() const { return workspace_.size(); }
  void sync() const;

private:
  int device_ = 0;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer workspace_;
};

// A weight matrix on the device: [out, in] row-major, BF16 (or fp32 for the small, precision-
// sensitive ones such as the router), optional fp32 bias [out]. type: BF16 for those; a block type
// (GGUF's Q4_K, ...) for a matrix kept in its blocks, each row in / block_elems blocks.
struct DeviceMatrix {
  const void* w = nullptr;
  bool f32 = false;
  int out = 0, in = 0;
  const float* bias = nullptr;
  DType type = DType::BF16;
};

// y[t, :] = x[t, :] · Wᵀ (+ b) for t < n: the GEMV kernel for up to 4 tokens (decode, exact fp32
// accumulation, capturable; a block-type W is read in its blocks), cuBLAS otherwise (BF16 inputs
// via xbf scratch [n, in], fp32 accumulation and output; a block-type W is first widened to BF16
// into wq scratch [out, in]).
void linear(const Context& ctx, const DeviceMatrix& m, const float* x, int x_stride, int n, float* y, int y_stride,
            uint16_t* xbf, uint16_t* wq = nullptr);
// m's weights as a BF16 [out, in] matrix for cuBLAS: m.w itself, or a block-type m widened into wq.
const void* bf16_weights(const Context& ctx, const DeviceMatrix& m, uint16_t* wq);
// y[n, out] (ldy) = xbf[n, in] (BF16, ldx) · W[out, in]ᵀ with W BF16 at w: cuBLAS, fp32 out.
void gemm_bf16(const Context& ctx, const void* w, int out, int in, const uint16_t* xbf, int ldx, int n, float* y,
               int ldy);

}  // namespace moescope::cuda
