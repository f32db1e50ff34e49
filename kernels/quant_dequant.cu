#include <stdexcept>
#include <string>

#include "quant_blocks.cuh"
#include "quant_dequant.cuh"

namespace moescope::kernels {
namespace {

// One thread per block (grid-stride): unpack, then the block's weights with the host's roundings.
template <DType T, bool F32>
__global__ void dequant_kernel(const uint8_t* __restrict__ src, long long n_blocks, void* __restrict__ dst) {
  constexpr int BE = detail::kQElems<T>, BB = detail::kQBytes<T>, NG = detail::kQGroups<T>;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_blocks;
       i += (long long)gridDim.x * blockDim.x) {
    detail::QBlockBuf<T> blk;
    detail::load_block<T>(src + size_t(i) * BB, blk);
    int8_t q[BE];
    float s[NG], o[NG];
    quant::unpack<T>(blk.bytes, q, s, o);
    // 16-byte stores (dst is 16-byte aligned and a block's weights fill whole 16-byte pieces)
    if constexpr (F32) {
      float4* d = reinterpret_cast<float4*>(static_cast<float*>(dst) + size_t(i) * BE);
#pragma unroll 2
      for (int e = 0; e < BE; e += 4)
        d[e / 4] = make_float4(detail::qvalue<T>(q, s, o, e), detail::qvalue<T>(q, s, o, e + 1),
                               detail::qvalue<T>(q, s, o, e + 2), detail::qvalue<T>(q, s, o, e + 3));
    } else {
      uint4* d = reinterpret_cast<uint4*>(static_cast<uint16_t*>(dst) + size_t(i) * BE);
      auto pair = [&](int e) {
        return uint32_t(detail::f2bf16(detail::qvalue<T>(q, s, o, e))) |
               (uint32_t(detail::f2bf16(detail::qvalue<T>(q, s, o, e + 1))) << 16);
      };
#pragma unroll 2
      for (int e = 0; e < BE; e += 8) d[e / 8] = make_uint4(pair(e), pair(e + 2), pair(e + 4), pair(e + 6));
    }
  }
}

}  // namespace

void quant_dequantize(const void* src, DType t, long long n_blocks, void* dst, bool dst_f32, cudaStream_t stream) {
  if (n_blocks <= 0) return;
  const long long need = (n_blocks + 255) / 256;
  const unsigned grid = unsigned(need < 8192 ? need : 8192);
  const auto* s = static_cast<const uint8_t*>(src);
  const bool known = quant::with_block_type(t, [&]<DType T>() {
    if (dst_f32) dequant_kernel<T, true><<<grid, 256, 0, stream>>>(s, n_blocks, dst);
    else dequant_kernel<T, false><<<grid, 256, 0, stream>>>(s, n_blocks, dst);
  });
  if (!known)
    throw std::invalid_argument(std::string("quant_dequantize: not a block type: ").append(std::to_string(int(t))));
}

}  // namespace moescope::kernels
