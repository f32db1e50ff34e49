#include "cuda/cuda_context.h"

#include <spdlog/spdlog.h>

#include "add_bias.cuh"
#include "convert.cuh"
#include "gemv.cuh"
#include "moescope/error.h"
#include "quant_dequant.cuh"
#include "quant_gemv.cuh"

namespace moescope::cuda {

namespace {
const char* cublas_status_name(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}
std::string where(const char* file, int line) {
  std::string f = file;
  const auto slash = f.rfind("/src/");
  return (slash == std::string::npos ? f : f.substr(slash + 1)) + ":" + std::to_string(line);
}
constexpr size_t kCublasWorkspace = size_t(32) << 20;
}  // namespace

void throw_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  throw Error(std::string("CUDA error: ") + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ") in " + expr +
              " at " + where(file, line));
}

void throw_cublas(cublasStatus_t st, const char* expr, const char* file, int line) {
  throw Error(std::string("cuBLAS error: ") + cublas_status_name(st) + " in " + expr + " at " + where(file, line));
}

DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  const cudaError_t err = cudaMalloc(&p_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the error so the context stays usable
    p_ = nullptr;
    throw Error("could not allocate " + std::to_string(bytes >> 20) + " MiB of GPU memory: " + cudaGetErrorString(err) +
                " (use --backend cpu or a smaller --context)");
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) cudaFree(p_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFree(p_);
    p_ = o.p_, n_ = o.n_;
    o.p_ = nullptr, o.n_ = 0;
  }
  return *this;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : n_(bytes) {
  if (bytes) MOESCOPE_CUDA_CHECK(cudaMallocHost(&p_, bytes));
}

PinnedBuffer::~PinnedBuffer() {
  if (p_) cudaFreeHost(p_);
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFreeHost(p_);
    p_ = o.p_, n_ = o.n_;
    o.p_ = nullptr, o.n_ = 0;
  }
  return *this;
}

Context::Context(int device) : device_(device) {
  MOESCOPE_CUDA_CHECK(cudaSetDevice(device));
  MOESCOPE_CUDA_CHECK(cudaGetDeviceProperties(&props_, device));
  MOESCOPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    MOESCOPE_CUBLAS_CHECK(cublasCreate(&cublas_));
    MOESCOPE_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // Our own workspace: cuBLAS then never allocates during a call (and graphs stay legal).
    workspace_ = DeviceBuffer(kCublasWorkspace);
    MOESCOPE_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_.get(), workspace_.size()));
  } catch (...) {
    if (cublas_) cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
    throw;
  }
}

Context::~Context() {
  cudaStreamSynchronize(stream_);
  workspace_ = DeviceBuffer();
  cublasDestroy(cublas_);
  cudaStreamDestroy(stream_);
}

void Context::sync() const { MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void gemm_bf16(const Context& ctx, const void* w, int out, int in, const uint16_t* xbf, int ldx, int n, float* y,
               int ldy) {
  // Row-major y[n, out] is column-major yᵀ [out, n] = W · xᵀ; row-major W [out, in] is
  // column-major [in, out], hence op T.
  const float one = 1.0f, zero = 0.0f;
  MOESCOPE_CUBLAS_CHECK(cublasGemmEx(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, CUDA_R_16BF, in, xbf,
                                     CUDA_R_16BF, ldx, &zero, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
}

const void* bf16_weights(const Context& ctx, const DeviceMatrix& m, uint16_t* wq) {
  if (m.type == DType::BF16) return m.w;
  if (!wq) throw Error(std::string("CUDA: no scratch to widen a ").append(dtype_name(m.type)).append(" matrix into"));
  kernels::quant_dequantize(m.w, m.type, int64_t(m.out) * m.in / dtype_block_elems(m.type), wq, false, ctx.stream());
  MOESCOPE_CUDA_LAUNCHED();
  return wq;
}

void linear(const Context& ctx, const DeviceMatrix& m, const float* x, int x_stride, int n, float* y, int y_stride,
            uint16_t* xbf, uint16_t* wq) {
  if (n <= kernels::kGemvMaxTokens) {
    if (m.type != DType::BF16)
      kernels::quant_gemv(x, x_stride, m.w, m.type, m.out, m.in, m.bias, y, y_stride, n, false, ctx.stream());
    else
      kernels::gemv(x, x_stride, m.w, m.f32, m.out, m.in, m.bias, y, y_stride, n, false, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
    return;
  }
  if (m.f32) {  // small fp32 matrices (router): full fp32 matmul, as the CPU backend computes it
    const float one = 1.0f, zero = 0.0f;
    MOESCOPE_CUBLAS_CHECK(cublasGemmEx(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, m.out, n, m.in, &one, m.w, CUDA_R_32F,
                                       m.in, x, CUDA_R_32F, x_stride, &zero, y, CUDA_R_32F, y_stride,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    const void* w = bf16_weights(ctx, m, wq);
    kernels::to_bf16_rows(x, x_stride, xbf, n, m.in, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
    gemm_bf16(ctx, w, m.out, m.in, xbf, m.in, n, y, y_stride);
  }
  if (m.bias) {
    kernels::add_bias(y, y_stride, m.bias, n, m.out, ctx.stream());
    MOESCOPE_CUDA_LAUNCHED();
  }
}

}  // namespace moescope::cuda
