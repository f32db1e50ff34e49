#include "moescope/anatomy.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace moescope {

namespace {
int64_t attention_params(const ModelSpec& s) {
  const auto& a = s.attn;
  const int64_t H = s.hidden;
  if (a.kind == AttentionKind::GQA) {
    const int64_t qd = int64_t(a.n_heads) * a.head_dim, kd = int64_t(a.n_kv_heads) * a.head_dim;
    int64_t p = H * qd * (a.output_gate ? 2 : 1) + 2 * H * kd + qd * H;  // gated: q_proj also yields the gates
    if (a.qkv_bias) p += qd + 2 * kd;
    if (a.sinks && a.qkv_bias) p += H;  // gpt-oss: o_proj has a bias too
    if (a.sinks) p += a.n_heads;
    if (a.qk_norm == QKNorm::PerHead) p += 2 * a.head_dim;
    if (a.qk_norm == QKNorm::Full) p += qd + kd;
    return p;
  }
  const int64_t nh = a.n_heads, qh = a.q_head_dim();
  int64_t p = 0;
  if (a.q_lora_rank > 0) p += H * a.q_lora_rank + a.q_lora_rank + int64_t(a.q_lora_rank) * nh * qh;
  else p += H * nh * qh;
  p += H * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank;
  p += int64_t(a.kv_lora_rank) * nh * (a.qk_nope_head_dim + a.v_head_dim);
  p += nh * a.v_head_dim * H;
  return p;
}

// One Gated DeltaNet layer: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a, out_proj, the depthwise
// conv1d, A_log and dt_bias, and the gated norm's weight.
int64_t linear_attention_params(const ModelSpec& s) {
  const auto& la = s.linear;
  const int64_t H = s.hidden, Cc = la.conv_dim(), VD = la.value_dim(), nv = la.n_v_heads;
  return H * Cc + H * VD + 2 * H * nv + VD * H + Cc * la.conv_kernel + 2 * nv + la.v_head_dim;
}
}  // namespace

ParamCounts count_params(const ModelSpec& s) {
  ParamCounts c;
  const int64_t H = s.hidden, V = s.vocab_size;
  const auto& m = s.moe;
  c.embedding = V * H;
  c.lm_head = s.tie_embeddings ? 0 : V * H;
  c.norms = H;  // final norm
  for (int l = 0; l < s.n_layers; ++l) {
    if (s.is_linear(l)) c.linear_attention += linear_attention_params(s);
    else c.attention += attention_params(s);
    c.norms += 2 * H;
    if (!s.moe_layer[size_t(l)]) {
      c.dense_ffn += 3 * H * s.dense_width;
      continue;
    }
    const int64_t expert = 3 * H * m.expert_width + (m.expert_bias ? 2 * m.expert_width + H : 0);
    c.router += int64_t(m.router.n_experts) * H +
                (m.router.correction_bias || m.router.logit_bias ? m.router.n_experts : 0);
    c.routed_experts += expert * m.router.n_experts;
    c.routed_active += expert * m.router.top_k;
    if (m.shared != SharedExperts::None) c.shared_experts += 3 * H * m.shared_width;
    if (m.shared == SharedExperts::SigmoidGated) c.shared_experts += H;
  }
  const int64_t common = c.attention + c.linear_attention + c.norms + c.dense_ffn + c.router + c.shared_experts;
  c.total = c.embedding + c.lm_head + common + c.routed_experts;
  // A tied head is one matrix used twice per token; count it once in both figures.
  c.active = c.embedding + c.lm_head + common + c.routed_active;
  c.active_without_embedding = c.active - (s.tie_embeddings ? 0 : c.embedding);
  return c;
}

double decode_weight_bytes(const ModelSpec& s, double bytes_per_param) {
  ParamCounts c = count_params(s);
  // One embedding row instead of the table; a tied head still streams the whole matrix once.
  double params = double(c.active - c.embedding) + double(s.hidden);
  if (s.tie_embeddings) params += double(c.embedding);
  return params * bytes_per_param;
}

KvFigure kv_figure(const ModelSpec& s, int bytes_per_value, const std::string& element_type) {
  KvFigure f;
  f.element_type = element_type;
  f.layers = s.n_attention_layers();  // only softmax-attention layers keep K/V per token
  f.bytes_per_token_layer = s.kv_values_per_token() * bytes_per_value;
  f.bytes_per_token = f.bytes_per_token_layer * f.layers;
  f.mha_bytes_per_token = s.mha_kv_values_per_token() * bytes_per_value * f.layers;
  f.state_bytes = int64_t(s.n_linear_layers()) * s.linear.state_values() * 4;
  return f;
}

std::string format_bytes_iec(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024.0 && u < 4) bytes /= 1024.0, ++u;
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  else std::snprintf(buf, sizeof buf, bytes >= 100 ? "%.0f %s" : bytes >= 10 ? "%.1f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

std::string kv_figure_text(const KvFigure& kv, const std::string& attention) {
  std::string text = format_bytes_iec(double(kv.bytes_per_token)) + " per token in " + kv.element_type + " for all " +
                     std::to_string(kv.layers) + " attention layers (" +
                     format_bytes_iec(double(kv.bytes_per_token_layer)) + " per layer)";
  const double x = kv.times_smaller();
  if (x > 1.0001) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", x);
    text += "; " + attention + ": " + buf + "× smaller than multi-head attention (" +
            format_bytes_iec(double(kv.mha_bytes_per_token)) + ")";
  }
  if (kv.state_bytes > 0)
    text += "; plus a fixed " + format_bytes_iec(double(kv.state_bytes)) + " of linear-attention state (FP32)";
  return text;
}

std::string attention_kind_name(const ModelSpec& s) {
  return s.attn.kind == AttentionKind::MLA ? "MLA" : s.attn.n_kv_heads == s.attn.n_heads ? "MHA" : "GQA";
}

const std::vector<WeightFormat>& weight_formats() {
  static const std::vector<WeightFormat> f = {
      {"bf16", "BF16", 16.0},   {"fp8", "FP8", 8.0},       {"q8_0", "Q8_0", 8.5},      {"q6_k", "Q6_K", 6.5625},
      {"q5_k_m", "Q5_K_M", 5.7}, {"q4_k_m", "Q4_K_M", 4.85}, {"mxfp4", "MXFP4", 4.25},   {"int4", "INT4", 4.0},
      {"q3_k_m", "Q3_K_M", 3.9}, {"q2_k", "Q2_K", 2.9},      {"iq1_m", "IQ1_M", 1.75},   {"iq1_s", "IQ1_S", 1.5625}};
  return f;
}

int64_t default_memory_context(const ModelSpec& spec) { return spec.max_position > 0 ? spec.max_position : 4096; }

nlohmann::json anatomy_json(const ModelSpec& s, int64_t context) {
  using nlohmann::json;
  const ParamCounts c = count_params(s);
  const auto& a = s.attn;
  const auto& r = s.moe.router;
  const std::string attn_kind = attention_kind_name(s);
  json attention = {{"kind", attn_kind}, {"heads", a.n_heads}};
  if (a.kind == AttentionKind::MLA) {
    attention["q_lora_rank"] = a.q_lora_rank;
    attention["kv_lora_rank"] = a.kv_lora_rank;
    attention["qk_nope_head_dim"] = a.qk_nope_head_dim;
    attention["qk_rope_head_dim"] = a.qk_rope_head_dim;
    attention["v_head_dim"] = a.v_head_dim;
  } else {
    attention["kv_heads"] = a.n_kv_heads;
    attention["head_dim"] = a.head_dim;
    attention["qk_norm"] = a.qk_norm == QKNorm::None ? "none" : (a.qk_norm == QKNorm::PerHead ? "per_head" : "full");
  }
  attention["rope"] = {{"theta", s.rope.theta}, {"dim", s.rope.dim}, {"interleaved", s.rope.interleaved},
                       {"yarn", s.rope.yarn}};
  if (s.rope.yarn) attention["rope"]["factor"] = s.rope.factor;
  attention["sinks"] = a.sinks;
  int sliding = 0;
  for (int l = 0; l < s.n_layers; ++l) sliding += s.window(l) > 0 ? 1 : 0;
  attention["sliding_window"] = a.sliding_window;
  attention["sliding_layers"] = sliding;
  attention["output_gate"] = a.output_gate;
  json linear = {{"layers", s.n_linear_layers()}, {"attention_layers", s.n_attention_layers()}};
  if (s.n_linear_layers() > 0) {
    const auto& la = s.linear;
    linear["kind"] = "gated_deltanet";
    linear["key_heads"] = la.n_k_heads, linear["value_heads"] = la.n_v_heads;
    linear["key_head_dim"] = la.k_head_dim, linear["value_head_dim"] = la.v_head_dim;
    linear["conv_kernel"] = la.conv_kernel;
    linear["state_bytes_per_layer_fp32"] = la.state_values() * 4;
    linear["params_share"] = c.total ? double(c.linear_attention) / double(c.total) : 0.0;
  }

  const char* scoring = r.scoring == ScoreFunc::Softmax ? "softmax"
                        : r.scoring == ScoreFunc::Sigmoid ? "sigmoid" : "softmax_after_topk";
  const char* group = r.group_score == GroupScore::None ? "none" : (r.group_score == GroupScore::Max ? "max" : "sum_top2");
  const char* shared = s.moe.shared == SharedExperts::None ? "none"
                       : s.moe.shared == SharedExperts::Plain ? "plain" : "sigmoid_gated";
  json experts = {{"moe_layers", s.n_moe_layers()},
                  {"dense_layers", s.n_layers - s.n_moe_layers()},
                  {"routed", r.n_experts},
                  {"active", r.top_k},
                  {"shared", shared},
                  {"shared_width", s.moe.shared_width},
                  {"expert_width", s.moe.expert_width},
                  {"expert_bias", s.moe.expert_bias},
                  {"activation", s.moe.activation == ExpertActivation::SiLU ? "swiglu" : "clamped_swiglu"},
                  {"router", {{"scoring", scoring},
                              {"correction_bias", r.correction_bias},
                              {"group_selection", group},
                              {"n_group", r.n_group},
                              {"topk_group", r.topk_group},
                              {"renormalize", r.renormalize},
                              {"logit_bias", r.logit_bias},
                              {"scaling", r.scaling}}}};

  const int64_t kv_vals = s.kv_values_per_token(), mha_vals = s.mha_kv_values_per_token();
  const KvFigure fig = kv_figure(s);
  const int64_t kv_bf16_token = fig.bytes_per_token, mha_bf16_token = fig.mha_bytes_per_token;
  json kv = {{"values_per_token_layer", kv_vals},
             {"bytes_per_token_bf16", kv_bf16_token},
             {"mha_equivalent_bytes_per_token_bf16", mha_bf16_token},
             {"compression_vs_mha", mha_vals ? 1.0 - double(kv_vals) / double(mha_vals) : 0.0},
             {"layers", s.n_attention_layers()},
             {"bytes_per_token_layer_bf16", fig.bytes_per_token_layer},
             {"recurrent_state_bytes_fp32", fig.state_bytes}};

  json memory = json::object();
  for (const WeightFormat& f : weight_formats()) {
    const double bpp = f.bits_per_weight / 8.0;
    const double weights = double(c.total) * bpp;
    const double kv_bytes = double(kv_bf16_token) * double(context);
    memory[f.key] = {{"label", f.label},
                     {"bits_per_weight", f.bits_per_weight},
                     {"weights_bytes", int64_t(weights)},
                     {"kv_bytes", int64_t(kv_bytes)},
                     {"total_bytes", int64_t(weights + kv_bytes)},
                     {"decode_weight_bytes", int64_t(decode_weight_bytes(s, bpp))}};
  }

  json j = {{"architecture", s.architecture},
            {"model_type", s.model_type},
            {"name", s.name},
            {"layers", s.n_layers},
            {"hidden_size", s.hidden},
            {"vocab_size", s.vocab_size},
            {"max_position_embeddings", s.max_position},
            {"tied_embeddings", s.tie_embeddings},
            {"attention", attention},
            {"linear_attention", linear},
            {"experts", experts},
            {"total_params", c.total},
            {"active_params", c.active},
            {"active_params_without_embedding", c.active_without_embedding},
            {"params", {{"embedding", c.embedding},
                        {"lm_head", c.lm_head},
                        {"attention", c.attention},
                        {"linear_attention", c.linear_attention},
                        {"norms", c.norms},
                        {"dense_ffn", c.dense_ffn},
                        {"router", c.router},
                        {"routed_experts", c.routed_experts},
                        {"routed_experts_active", c.routed_active},
                        {"shared_experts", c.shared_experts}}},
            {"counting_convention",
             "all weights of the transformer layers + input embedding + output head (tied head counted once); "
             "active = attention, norms, router, shared experts, top-k routed experts, dense layers, embedding and "
             "head; active_params_without_embedding leaves the input embedding out"},
            {"kv_cache", kv},
            {"decode_weight_bytes_bf16", int64_t(decode_weight_bytes(s, 2.0))},
            {"memory", memory},
            {"memory_context_tokens", context}};
  if (s.vision_unused) j["vision"] = "the checkpoint has a vision tower; moescope runs only the language model";
  return j;
}

}  // namespace moescope
