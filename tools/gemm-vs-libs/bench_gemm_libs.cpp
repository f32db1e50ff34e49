// One-off measurement for the CPU backend's choice of GEMM (docs/cpu-backend.md): moescope's own
// kernel (cpu::matmul, BF16 weights, fp32 x and y) against OpenBLAS sgemm (fp32; Debian 12's
// OpenBLAS 0.3.21 declares cblas_sbgemm but its library does not export it) and oneDNN (bf16 x
// bf16 -> fp32 matmul, x rounded to bf16) on the same shapes and threads.
// Not part of the build; tools/gemm-vs-libs/run.sh builds and runs it.
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <vector>

#include "moescope/cpu_ops.h"
#include "moescope/thread_pool.h"

using namespace moescope;

static uint16_t bf16(float f) { return uint16_t(std::bit_cast<uint32_t>(f) >> 16); }

template <class F>
double best_seconds(F&& f) {
  f();  // warm-up
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  openblas_set_num_threads(threads);
  ThreadPool pool(threads);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::printf("%-22s %12s %12s %12s\n", "M x N x K", "moescope", "sgemm", "oneDNN bf16");
  for (auto [M, N, K] : {std::tuple{4, 768, 2048}, std::tuple{16, 768, 2048}, std::tuple{64, 2048, 2048},
                         std::tuple{256, 2048, 2048}, std::tuple{512, 4096, 2048}}) {
    std::vector<float> x(size_t(M) * K), w(size_t(N) * K), y(size_t(M) * N);
    std::vector<uint16_t> xb(x.size()), wb(w.size());
    for (size_t i = 0; i < x.size(); ++i) xb[i] = bf16(x[i] = nd(rng));
    for (size_t i = 0; i < w.size(); ++i) wb[i] = bf16(w[i] = 0.02f * nd(rng));
    const TensorView wv{DType::BF16, {N, K}, wb.data()};
    const double flops = 2.0 * M * N * K;
    const double t_ms = best_seconds([&] { cpu::matmul(pool, x.data(), M, wv, nullptr, y.data()); });
    const double t_sg = best_seconds([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y.data(), N);
    });
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream s(eng);
    using dt = dnnl::memory::data_type;
    dnnl::memory::desc a_md({M, K}, dt::bf16, dnnl::memory::format_tag::ab);
    dnnl::memory::desc b_md({K, N}, dt::bf16, dnnl::memory::format_tag::ba);  // W[N, K] as K x N
    dnnl::memory::desc c_md({M, N}, dt::f32, dnnl::memory::format_tag::ab);
    dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));  // oneDNN 2.7
    dnnl::memory a(a_md, eng, xb.data()), b(b_md, eng, wb.data()), c(c_md, eng, y.data());
    const double t_dn = best_seconds([&] {
      mm.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
      s.wait();
    });
    std::printf("%5d x %5d x %5d   %9.1f GF %9.1f GF %9.1f GF\n", M, N, K, flops / t_ms / 1e9, flops / t_sg / 1e9,
                flops / t_dn / 1e9);
  }
  return 0;
}
