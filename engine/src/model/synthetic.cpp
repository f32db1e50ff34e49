// Synthetic models for `moescope-cli bench --shape`: a real model's shapes, random BF16 weights,
// bound through the same bind_weights() code as a checkpoint (via an in-memory tensor table).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <thread>

#include "moescope/anatomy.h"
#include "moescope/error.h"
#include "moescope/model_weights.h"

namespace moescope {

namespace {

// Fills n BF16 values with uniform noise in ±scale (xorshift; fast, reproducible).
void fill_random(uint16_t* p, size_t n, uint64_t seed, float scale) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t per = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([=] {
      uint64_t x = seed * 0x9E3779B97F4A7C15ull + t + 1;
      const size_t b = t * per, e = std::min(n, b + per);
      for (size_t i = b; i < e; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        float u = float(x >> 40) * (1.0f / float(1 << 24)) * 2.0f - 1.0f;
        p[i] = f32_to_bf16(u * scale);
      }
    });
  for (auto& th : pool) th.join();
}

// MemAvailable from /proc/meminfo in bytes (0 when unknown).
double available_ram_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0.0;
  char line[256];
  double kb = 0.0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024.0;
}

}  // namespace

std::shared_ptr<const Model> make_synthetic_model(ModelSpec spec, int layers, uint64_t seed, bool host_storage) {
  if (layers > 0 && layers < spec.n_layers) {
    spec.n_layers = layers;
    spec.moe_layer.resize(size_t(layers));
    if (!spec.attn.sliding_layer.empty()) spec.attn.sliding_layer.resize(size_t(layers));
    if (!spec.linear_layer.empty()) spec.linear_layer.resize(size_t(layers));
  }
  if (host_storage) {  // one clear message instead of the OOM killer
    const double need = double(count_params(spec).total) * 2.0, have = available_ram_bytes();
    if (have > 0 && need > 0.9 * have) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    "%s with %d layers needs %.1f GB of RAM for its BF16 weights, %.1f GB is available "
                    "(use --layers with fewer layers)",
                    spec.name.c_str(), spec.n_layers, need / 1e9, have / 1e9);
      throw Error(msg);
    }
  }
  auto m = std::make_shared<Model>();
  m->synthetic = true;
  m->seed = seed;
  m->spec = spec;
  m->weights = bind_synthetic_weights(m->spec, [&](const std::string& name, const std::vector<int64_t>& shape) {
    TensorView t;
    t.dtype = DType::BF16;
    t.shape = shape;
    if (!host_storage) return t;
    const size_t n = size_t(t.numel());
    auto buf = std::make_unique<uint16_t[]>(n);
    const bool is_norm = name.find("norm") != std::string::npos;
    if (is_norm) std::fill(buf.get(), buf.get() + n, f32_to_bf16(1.0f));
    else if (name.find("e_score_correction_bias") != std::string::npos || name.ends_with(".bias") ||
             name.ends_with(".sinks"))
      std::fill(buf.get(), buf.get() + n, 0);
    else fill_random(buf.get(), n, seed + std::hash<std::string>{}(name), 0.5f / std::sqrt(float(shape.back())));
    t.data = buf.get();
    m->storage.push_back(std::move(buf));
    return t;
  });
  spdlog::info("synthetic {}: {} layers ({} MoE), host weights: {}", spec.name, spec.n_layers, spec.n_moe_layers(),
               host_storage);
  return m;
}

}  // namespace moescope
