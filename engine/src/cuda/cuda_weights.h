#pragma once
// The model's weights on the device, laid out for the CUDA forward:
//   - big matrices in BF16 (F32/F16 checkpoints are converted on upload), fused where the
//     forward reads them together: [q; k; v], MLA [q_a or q; kv_a], SwiGLU [gate; up]; a
//     block-quantised matrix (GGUF, --weights q8_0) stays in its blocks when all its fused parts
//     share the type (DeviceMatrix::type), else it is widened to BF16 on the device; the LM head
//     is always widened;
//   - routed experts stacked per layer: gate_up [E][2W][H], down [E][H][W], so the decode
//     kernels find expert e at a fixed stride from the ids on the device; in BF16, or, where the
//     checkpoint's experts are block-quantised (GGUF), in their blocks as the file has them (no
//     widening: decode reads the blocks, prefill widens one expert at a time into scratch);
//   - the embedding in fp32 unless the checkpoint's is BF16 (then the LM head, tied or not, is a
//     BF16 matrix of its own);
//   - the small, precision-sensitive tensors in fp32: norm weights (with norm_weight_offset
//     added, so the kernels multiply by the stored w), biases, router, correction bias,
//     shared-expert gate, attention sinks, the Gated DeltaNet gates' projections and constants.
// Everything lives in one allocation (the arena); planning walks the same code without
// allocating, so the memory check knows the exact size first.
#include <cstdint>
#include <vector>

#include "cuda/cuda_context.h"
#include "moescope/model_weights.h"

namespace moescope::cuda {

struct DeviceLayer {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  DeviceMatrix in_proj;  // GQA: [q; k; v] (+ bias); MLA: [q_a or q; kv_a]
  DeviceMatrix q_b;      // MLA with q LoRA
  DeviceMatrix o;                    // (+ bias: gpt-oss, Llama with attention_bias)
  const float* sinks = nullptr;      // gpt-oss: fp32 [n_heads] attention sink logits
  const float* q_norm = nullptr;     // GQA q/k norm ([head_dim] per head or full width)
  const float* k_norm = nullptr;
  const float* q_a_norm = nullptr;   // MLA
  const float* kv_a_norm = nullptr;
  const uint16_t* kv_b = nullptr;    // MLA [nh·(N+Dv), C]
  DeviceMatrix dense_gate_up, dense_down;
  // Gated DeltaNet (ModelSpec::is_linear layers; no attention weights there)
  DeviceMatrix lin_in;               // [q, k, v (conv_dim); z (value_dim)]
  DeviceMatrix lin_ba;               // fp32 [b (nv); a (nv)]: the gates, small and precision-sensitive
  DeviceMatrix lin_out;              // [H, value_dim]
  const float* lin_conv = nullptr;   // fp32 [conv_dim][conv_kernel]
  const float* a_log = nullptr;      // fp32 [nv]
  const float* dt_bias = nullptr;    // fp32 [nv]
  const float* lin_norm = nullptr;   // fp32 [v_head_dim]
  DeviceMatrix router;               // fp32 [E, H] (+ logit bias: gpt-oss)
  const float* router_bias = nullptr;
  // [E][2W][H] and [E][H][W]: BF16, or rows of blocks of the given type (quant_gemv.cuh); expert
  // e starts at e · expert_bytes(type, rows, cols).
  const void* experts_gate_up = nullptr;
  const void* experts_down = nullptr;
  DType experts_gate_up_type = DType::BF16, experts_down_type = DType::BF16;
  const float* experts_gate_up_bias = nullptr;  // gpt-oss: fp32 [E][2W]
  const float* experts_down_bias = nullptr;     // gpt-oss: fp32 [E][H]
  DeviceMatrix shared_gate_up, shared_down;
  const float* shared_gate = nullptr;         // fp32 [H]
};

struct DeviceWeights {
  const uint16_t* embed = nullptr;      // [V, H] BF16 checkpoints (and synthetic models)
  const float* embed_f32 = nullptr;     // [V, H] other checkpoints: fp32, the values as they are (a
                                        // lookup reads T rows, so precision costs no bandwidth)
  const float* final_norm = nullptr;
  DeviceMatrix lm_head;             // [V, H] (the embedding when tied)
  std::vector<DeviceLayer> layers;
  DeviceBuffer arena;
};

// Bytes of one rows × cols expert matrix of a stack in `type` (BF16 or a block type).
size_t expert_bytes(DType type, int rows, int cols);
// The largest matrix (elements: an expert's gate_up or down, a fused projection) that the device
// keeps in blocks: the BF16 scratch prefill widens one into (0: none).
size_t dequant_scratch_elems(const Model& model);

// Bytes the device layout of `model` takes.
size_t device_weight_bytes(const Model& model);
// Uploads (or, for synthetic models without host data, generates) the weights. Logs progress.
DeviceWeights upload_weights(const Context& ctx, const Model& model);

}  // namespace moescope::cuda
