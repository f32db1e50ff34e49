// moescope-cli bench --shape NAME|--model DIR [--backend cpu|cuda] [--prompt-tokens N]
//                    [--decode-tokens N] [--layers N] [--json]
// Prefill and decode speed, weight bytes read per decoded token, the backend's measured memory
// bandwidth and matmul throughput, and the fractions of those rooflines reached.
// --shape builds random BF16 weights of a real model's shape (no file).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "commands.h"
#include "common.h"
#include "moescope/anatomy.h"
#include "moescope/weight_footprint.h"
#include "moescope/error.h"
#include "moescope/sampler.h"

namespace moescope::cli {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Shape names map onto the shipped presets (deepseek-v3 has DeepSeek-R1's configuration).
std::string preset_of_shape(const std::string& shape) { return shape == "deepseek-v3" ? "deepseek-r1" : shape; }
}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args(argc, argv, 2, {"json"},
            {"shape", "model", "backend", "prompt-tokens", "decode-tokens", "layers", "threads", "seed", "weights"});
  BackendOptions bopt = backend_options(args);
  const bool want_cuda = bopt.kind == "cuda" || (bopt.kind == "auto" && cuda_available());
  const int prompt = int(args.get_int("prompt-tokens", want_cuda ? 512 : 64));
  const int decode = int(args.get_int("decode-tokens", want_cuda ? 256 : 16));
  const int layers = int(args.get_int("layers", 0));
  if (prompt < 1 || prompt > 65536 || decode < 1 || decode > 65536) throw Error("token counts must be in 1..65536");
  if (layers < 0) throw Error("--layers must be positive");

  std::shared_ptr<const Model> model;
  std::string what;
  const LoadOptions lopt = load_options(args);
  if (auto shape = args.get("shape")) {
    if (args.has("weights")) throw Error("--weights applies to --model only (--shape builds random BF16 weights)");
    ModelSpec spec = load_model_spec(preset_path(preset_of_shape(*shape)));
    spec.name = *shape;
    model = make_synthetic_model(spec, layers, uint64_t(args.get_int("seed", 1)), /*host_storage=*/!want_cuda);
    what = "shape " + *shape + " (random BF16 weights)";
  } else {
    model = load_model(model_dir(args), lopt);
    if (layers > 0) throw Error("--layers applies to --shape only");
    what = "model " + model->spec.name;
  }
  const ModelSpec& s = model->spec;
  bopt.context = prompt + decode + 1;
  auto backend = make_backend(model, bopt);

  // Prefill: a random prompt in one forward.
  std::mt19937 rng(7);
  std::vector<int32_t> ids(static_cast<size_t>(prompt));
  for (auto& id : ids) id = int32_t(rng() % uint32_t(s.vocab_size));
  ForwardResult r;
  ForwardOptions fopt;
  // Warm-up on the whole prompt, then reset: every expert it routes to is paged in and its scratch
  // sized before the clock starts (llama-bench warms up the same way), so the timed prefill
  // measures the kernels, not the page cache.
  backend->forward(ids, fopt, r);
  backend->truncate(0);
  double t0 = now_s();
  backend->forward(ids, fopt, r);
  const double prefill_s = now_s() - t0;

  // Decode: greedy, one token per forward.
  int32_t next = argmax(r.logits.data(), s.vocab_size);
  const double linear_before = backend->linear_state_seconds();
  t0 = now_s();
  for (int i = 0; i < decode; ++i) {
    backend->forward(std::span<const int32_t>(&next, 1), fopt, r);
    next = argmax(r.logits.data(), s.vocab_size);
  }
  const double decode_s = now_s() - t0;
  const double linear_decode_s = backend->linear_state_seconds() - linear_before;

  const Backend::Calibration cal = backend->calibrate();
  // The weight bytes a decoded token reads, from the views as loaded (each tensor in its own type: a
  // Q4_K_M file's Q6_K head and F32 routers count as what they are); BF16 for weights made on the
  // fly (--shape), which have no views in memory.
  const WeightFootprint footprint = weight_footprint(s, model->weights);
  const double weight_bytes =
      footprint.total_bytes > 0 ? double(footprint.decode_bytes_per_token) : decode_weight_bytes(s, 2.0);
  const KvStats kv = backend->kv_stats();
  const double avg_ctx = prompt + decode / 2.0;
  const double kv_bytes = double(kv.bytes_per_token_layer) * kv.n_layers * avg_ctx;
  // Linear-attention layers read and write their whole fixed-size state once a token.
  const double state_bytes = 2.0 * double(kv.state_bytes);
  const double decode_tps = decode / decode_s, prefill_tps = prompt / prefill_s;
  const double roofline_tps = cal.bandwidth_gbs * 1e9 / (weight_bytes + kv_bytes + state_bytes);
  const ParamCounts pc = count_params(s);
  // Matmul work of the prompt (attention scores aside): every token through the layers, the LM
  // head for the last one only (bench asks for no other logits).
  const double layer_flops = 2.0 * double(pc.active - pc.embedding - pc.lm_head);
  const double head_flops = 2.0 * double(pc.lm_head ? pc.lm_head : pc.embedding);
  const double prefill_tflops = (layer_flops * prompt + head_flops) / prefill_s / 1e12;

  nlohmann::json j = {{"what", what},
                      {"backend", backend->name()},
                      {"layers_run", s.n_layers},
                      {"moe_layers_run", s.n_moe_layers()},
                      {"prompt_tokens", prompt},
                      {"decode_tokens", decode},
                      {"prefill_seconds", prefill_s},
                      {"prefill_tokens_per_s", prefill_tps},
                      {"decode_tokens_per_s", decode_tps},
                      {"ms_per_token", 1000.0 * decode_s / decode},
                      {"weight_bytes_per_token", int64_t(weight_bytes)},
                      {"bytes_per_weight", footprint.total_bytes > 0 ? footprint.bits_per_weight / 8.0 : 2.0},
                      {"kv_bytes_per_token_avg", int64_t(kv_bytes)},
                      {"bandwidth_gbs", cal.bandwidth_gbs},
                      {"decode_roofline_tokens_per_s", roofline_tps},
                      {"decode_roofline_fraction", decode_tps / roofline_tps},
                      {"achieved_decode_gbs", decode_tps * (weight_bytes + kv_bytes + state_bytes) / 1e9},
                      {"matmul_tflops", cal.matmul_tflops},
                      {"prefill_tflops", prefill_tflops},
                      {"prefill_matmul_fraction", cal.matmul_tflops > 0 ? prefill_tflops / cal.matmul_tflops : 0.0},
                      {"calibration", cal.method}};
  if (kv.state_layers > 0) {
    j["linear_attention_layers_run"] = kv.state_layers;
    j["recurrent_state_bytes_per_token"] = int64_t(state_bytes);
    // Convolution and recurrence of the linear-attention layers (their projections are matmuls
    // and counted with the weights): the share of decode time the state update takes.
    j["linear_state_update_decode_fraction"] = linear_decode_s / decode_s;
  }
  if (args.has("json")) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%s on %s, %d layers (%d MoE)\n", what.c_str(), backend->name().c_str(), s.n_layers, s.n_moe_layers());
    std::printf("prefill %d tokens: %.1f tokens/s (%.3g TFLOP/s, %.0f%% of measured matmul %.3g TFLOP/s)\n", prompt,
                prefill_tps, prefill_tflops, 100.0 * j["prefill_matmul_fraction"].get<double>(), cal.matmul_tflops);
    std::printf("decode %d tokens: %.2f tokens/s, %.2f ms/token; %.1f MB weights + %.1f MB KV per token\n", decode,
                decode_tps, 1000.0 * decode_s / decode, weight_bytes / 1e6, kv_bytes / 1e6);
    std::printf("bandwidth %.1f GB/s -> roofline %.2f tokens/s; reached %.0f%%\n", cal.bandwidth_gbs, roofline_tps,
                100.0 * decode_tps / roofline_tps);
    if (kv.state_layers > 0)
      std::printf("linear attention: %d layers, %.1f MB state read and written per token, state update %.1f%% of decode\n",
                  kv.state_layers, state_bytes / 1e6, 100.0 * linear_decode_s / decode_s);
  }
  return 0;
}

}  // namespace moescope::cli
