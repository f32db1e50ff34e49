#pragma once
// The weights of one model as views into its checkpoint, bound by name and checked against the
// ModelSpec's shapes. Backends read (CPU) or upload (CUDA) from here.
#include <functional>
#include <memory>
#include <vector>

#include "moescope/checkpoint.h"
#include "moescope/model_spec.h"
#include "moescope/tensor.h"

namespace moescope {

struct Linear {
  TensorView w;  // [out, in], nn.Linear layout
  TensorView b;  // [out], data == nullptr when there is no bias
  bool has_bias() const { return b.data != nullptr; }
};

struct MlpWeights {  // SwiGLU: down(silu(gate(x)) * up(x))
  TensorView gate, up, down;  // [width, hidden], [width, hidden], [hidden, width]
  TensorView gate_b, up_b, down_b;  // F32 [width], [width], [hidden]; data == nullptr without biases (gpt-oss)
};

struct LayerWeights {
  TensorView attn_norm, ffn_norm;  // [hidden]
  // GQA
  Linear q, k, v, o;
  TensorView q_norm, k_norm;  // [head_dim] (per head) or [n·head_dim] (full); empty when unused
  // MLA (q is used when q_lora_rank == 0)
  Linear q_a, q_b, kv_a, kv_b;
  TensorView q_a_norm, kv_a_norm;
  // Gated DeltaNet linear attention (ModelSpec::linear; layers where spec.is_linear(l))
  Linear lin_qkv;          // [2·key_dim + value_dim, hidden]: q, k, v before the convolution
  Linear lin_z;            // [value_dim, hidden]: the output gate
  Linear lin_b, lin_a;     // [n_v_heads, hidden]: beta and the decay's input
  Linear lin_out;          // [hidden, value_dim]
  TensorView conv;         // [conv_dim, 1, conv_kernel] depthwise causal convolution
  TensorView dt_bias, a_log;  // [n_v_heads]
  TensorView lin_norm;     // [v_head_dim] the gated RMSNorm's weight (plain w, no offset)
  // FFN: dense, or router + experts (+ shared)
  MlpWeights dense;
  TensorView router;       // [n_experts, hidden]
  TensorView router_bias;  // [n_experts] e_score_correction_bias (DeepSeek-V3)
  TensorView router_logit_bias;  // [n_experts] the router linear's bias (gpt-oss)
  TensorView sinks;        // [n_heads] attention sink logits (gpt-oss)
  std::vector<MlpWeights> experts;
  MlpWeights shared;
  TensorView shared_gate;  // [1, hidden] (Qwen2-MoE)
};

struct ModelWeights {
  TensorView embed;       // [vocab, hidden]
  TensorView final_norm;  // [hidden]
  TensorView lm_head;     // [vocab, hidden] (the embedding when tied)
  std::vector<LayerWeights> layers;
  DType dtype = DType::F32;  // dtype of the bulk of the weights (the embedding's)
  // Tensors the binding had to re-lay out (gpt-oss' fused, transposed experts), shared so that
  // copies of the views stay valid.
  std::vector<std::shared_ptr<uint8_t[]>> owned;
};

// The component a weight view belongs to (anatomy's ParamCounts names, weight_part_name()).
enum class WeightPart : uint8_t {
  Embedding, LmHead, Attention, LinearAttention, Norms, DenseFfn, Router, RoutedExperts, SharedExperts
};
const char* weight_part_name(WeightPart p);  // "embedding", "lm_head", ..., "shared_experts"

// Calls f(part, matrix, view) for every view of the weights (empty ones included: check .data),
// W being ModelWeights or const ModelWeights. `matrix` marks the views the backends multiply in
// place as matrices: attention and linear-attention projections (not MLA's kv_b, which the
// attention splits by head), the dense, shared and routed experts' gate/up/down, and the LM head.
// A tied LM head is visited as its own view (it shares the embedding's data).
template <class W, class F>
void for_each_weight(W& w, F&& f) {
  f(WeightPart::Embedding, false, w.embed);
  f(WeightPart::LmHead, true, w.lm_head);
  f(WeightPart::Norms, false, w.final_norm);
  for (auto& L : w.layers) {
    for (auto* t : {&L.attn_norm, &L.ffn_norm}) f(WeightPart::Norms, false, *t);
    for (auto* l : {&L.q, &L.k, &L.v, &L.o, &L.q_a, &L.q_b, &L.kv_a}) f(WeightPart::Attention, true, l->w);
    for (auto* l : {&L.q, &L.k, &L.v, &L.o, &L.q_a, &L.q_b, &L.kv_a, &L.kv_b}) f(WeightPart::Attention, false, l->b);
    f(WeightPart::Attention, false, L.kv_b.w);
    for (auto* t : {&L.q_norm, &L.k_norm, &L.q_a_norm, &L.kv_a_norm, &L.sinks}) f(WeightPart::Attention, false, *t);
    for (auto* l : {&L.lin_qkv, &L.lin_z, &L.lin_b, &L.lin_a, &L.lin_out})
      f(WeightPart::LinearAttention, true, l->w), f(WeightPart::LinearAttention, false, l->b);
    for (auto* t : {&L.conv, &L.dt_bias, &L.a_log, &L.lin_norm}) f(WeightPart::LinearAttention, false, *t);
    auto mlp = [&](WeightPart part, auto& m) {
      for (auto* t : {&m.gate, &m.up, &m.down}) f(part, true, *t);
      for (auto* t : {&m.gate_b, &m.up_b, &m.down_b}) f(part, false, *t);
    };
    mlp(WeightPart::DenseFfn, L.dense);
    for (auto* t : {&L.router, &L.router_bias, &L.router_logit_bias}) f(WeightPart::Router, false, *t);
    for (auto& e : L.experts) mlp(WeightPart::RoutedExperts, e);
    mlp(WeightPart::SharedExperts, L.shared);
    f(WeightPart::SharedExperts, false, L.shared_gate);
  }
}

// Binds every tensor the spec needs. Accepts the Hub's per-expert tensors and transformers 5's
// fused `experts.gate_up_proj` / `experts.down_proj`. Throws Error naming the tensor on a missing
// tensor or a wrong shape.
ModelWeights bind_weights(const ModelSpec& spec, const Checkpoint& ck);
// Same binding with tensors made by `make(name, shape)` (synthetic models).
using TensorFactory = std::function<TensorView(const std::string& name, const std::vector<int64_t>& shape)>;
ModelWeights bind_synthetic_weights(const ModelSpec& spec, const TensorFactory& make);
// Same binding over any source of named tensors: `has(name)` and `fetch(name, shape)`, which
// checks the shape itself.
ModelWeights bind_weights(const ModelSpec& spec, const std::function<bool(const std::string&)>& has,
                          const TensorFactory& fetch);

class GgufFile;
// Binds a GGUF file's tensors under the Hugging Face names (3-D stacked experts become one view
// per expert). Tensors the binding has to build (q/k rows of llama files un-permuted, DeepSeek's
// kv_b joined from attn_k_b and attn_v_b) go into `owned`.
ModelWeights bind_gguf_weights(const ModelSpec& spec, const GgufFile& gguf, std::vector<std::unique_ptr<uint8_t[]>>& owned);
// Keeps the block-quantised views the backends read in place (projections, experts, embedding, LM
// head) and replaces the other quantised views by F32 copies in `owned`; logs both with spdlog.
void dequantize_weights_for_backends(ModelWeights& weights, std::vector<std::unique_ptr<uint8_t[]>>& owned);

// How load_model keeps the weights. AsStored: in the checkpoint's dtype, read from the memory map.
// Q8_0 (`--weights q8_0`): every matrix the backends multiply in place (attention projections
// q/k/v/o/q_a/q_b/kv_a, dense, shared and expert gate/up/down, an untied LM head) that is F32,
// BF16 or F16 with rows a multiple of 32 is quantised at load into Q8_0 blocks owned by the Model
// (about 53% of BF16's bytes, 27% of F32's); the mapped file is untouched and the rest (embedding,
// norms, routers, MLA's kv_b, rows that are not whole blocks) stays as stored. The same rule holds
// for a GGUF file's F32/BF16/F16 tensors; its block-quantised ones are kept as they are.
enum class WeightsMode : uint8_t { AsStored, Q8_0 };
struct LoadOptions {
  WeightsMode weights = WeightsMode::AsStored;
  bool operator==(const LoadOptions&) const = default;
};
const char* weights_mode_name(WeightsMode m);  // "as-stored", "q8_0" (the CLI's spelling)
// "as-stored" / "q8_0" (any case); Error listing both for anything else.
WeightsMode parse_weights_mode(const std::string& text);
// Quantises the matrices described at WeightsMode::Q8_0 into `owned`, on all cores; returns how
// many it quantised and logs that with the bytes before and after.
int quantize_weights_q8_0(ModelWeights& weights, std::vector<std::unique_ptr<uint8_t[]>>& owned);

// A loaded model: spec + mapped checkpoint + bound weights.
struct Model {
  ModelSpec spec;
  std::unique_ptr<Checkpoint> checkpoint;  // safetensors; null for GGUF and synthetic models
  std::shared_ptr<const GgufFile> gguf;    // GGUF models (shared_ptr: GgufFile is incomplete here)
  std::vector<std::unique_ptr<uint8_t[]>> owned;  // tensors built at load (see bind_gguf_weights)
  ModelWeights weights;
  std::filesystem::path dir;  // the checkpoint directory, or the GGUF file
  // Q8_0 when load_model quantised at least one matrix (LoadOptions::weights), else AsStored.
  WeightsMode weights_mode = WeightsMode::AsStored;
  // Synthetic models (benchmarks): random weights of a real shape, no file. With host storage the
  // views point into `storage`; without, every view has data == nullptr and a device backend
  // generates the weights itself from `seed`.
  bool synthetic = false;
  uint64_t seed = 0;
  std::vector<std::unique_ptr<uint16_t[]>> storage;
};

// Reads config.json (+ generation_config.json), maps the safetensors and binds the weights; or,
// for a GGUF file (.gguf, a split set's part, an Ollama blob), reads its metadata and maps it.
std::shared_ptr<const Model> load_model(const std::filesystem::path& dir, const LoadOptions& options = {});
// True for a path load_model reads as GGUF: a regular file ending in .gguf or starting with the
// GGUF magic.
bool is_gguf_path(const std::filesystem::path& path);
// load_model, once per process: while anyone holds the model of `dir`, later calls get the same
// one (one memory map, one set of bound weights) as long as the checkpoint's files are unchanged
// (same config.json and safetensors sizes and modification times) and the options are the same.
// Thread-safe. The app's chat worker and its experiments worker share a model this way, each with
// its own backend and KV cache.
std::shared_ptr<const Model> load_model_shared(const std::filesystem::path& dir, const LoadOptions& options = {});

// What the weights are, for the status bar, the recent-models list and `inspect`: the dtype of a
// safetensors checkpoint's matrices ("BF16"), "Q8_0 (quantised on load)" after --weights q8_0, and
// for a GGUF file its general.file_type name ("Q4_K_M") or else the block types of its matrices
// ("Q4_K/Q6_K"), the most frequent first.
std::string weights_label(const Model& model);

// A model of `spec`'s shape with random BF16 weights (norms 1, small uniform values elsewhere),
// cut to its first `layers` layers when layers > 0. host_storage=false leaves every view's data
// null (for backends that build the weights on the device).
std::shared_ptr<const Model> make_synthetic_model(ModelSpec spec, int layers, uint64_t seed, bool host_storage);

}  // namespace moescope
