// llama.cpp's side of the llama.cpp goldens (tests/tools/gen_llama_goldens.py compiles this
// against the llama.cpp it builds; it is no part of moescope's build). Runs one GGUF model on the
// CPU over a token sequence in a single batch, logits for every position, and writes to OUT_DIR:
//   logits.f32         [n_tokens][n_vocab] little-endian float32
//   TENSOR-IL.bin      every MoE routing tensor the evaluation callback sees (ffn_moe_topk,
//                      ffn_moe_probs, ffn_moe_probs_biased, ffn_moe_probs_masked,
//                      ffn_moe_group_topk: each [n_tokens][ne0]), rows made contiguous
//   manifest.json      {"n_tokens", "n_vocab", "n_layer", "tensors": [{"name", "type", "ne": [ne0, ne1]}]}
// Usage: llama_goldens MODEL.gguf OUT_DIR THREADS OVERRIDE TOKEN...
// OVERRIDE: "-", or KEY=INT[,KEY=INT...], integer metadata values for llama.cpp to use where a
// file lacks the key (see vocab_override in gen_llama_goldens.py).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

namespace {

const char* const kWanted[] = {"ffn_moe_topk-", "ffn_moe_probs-", "ffn_moe_probs_biased-", "ffn_moe_probs_masked-",
                               "ffn_moe_group_topk-"};

// Exactly TENSOR-IL (not the views llama.cpp names "TENSOR-IL (reshaped)" and the like).
bool wanted(const char* name) {
  for (const char* w : kWanted) {
    const size_t n = std::strlen(w);
    if (std::strncmp(name, w, n) != 0 || name[n] == '\0') continue;
    bool digits = true;
    for (const char* c = name + n; *c; ++c) digits = digits && *c >= '0' && *c <= '9';
    if (digits) return true;
  }
  return false;
}

struct Capture {
  struct Tensor {
    ggml_type type;
    int64_t ne0, ne1;         // [ne1][ne0]: ne1 = tokens
    std::vector<char> bytes;  // contiguous rows
  };
  std::map<std::string, Tensor> tensors;  // by graph name, "ffn_moe_topk-3"
};

bool on_eval(ggml_tensor* t, bool ask, void* user) {
  auto* cap = static_cast<Capture*>(user);
  const char* name = ggml_get_name(t);
  if (ask) return wanted(name);
  if (!wanted(name)) return true;
  if (t->ne[2] * t->ne[3] != 1) {
    std::fprintf(stderr, "%s: unexpected shape [%lld %lld %lld %lld]\n", name, (long long)t->ne[0],
                 (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    std::exit(1);
  }
  const int64_t ne0 = t->ne[0], ne1 = t->ne[1];
  const size_t nb0 = t->nb[0], nb1 = t->nb[1];
  const size_t es = ggml_type_size(t->type);
  if (ggml_blck_size(t->type) != 1 || nb0 != es) {
    std::fprintf(stderr, "%s: type %s with element stride %zu is not handled\n", name, ggml_type_name(t->type), nb0);
    std::exit(1);
  }
  // The whole tensor from the backend (views: from the start of their own data), then row by row.
  const size_t span = size_t(ne1 - 1) * nb1 + size_t(ne0) * es;
  std::vector<char> raw(span);
  if (ggml_backend_buffer_is_host(t->buffer))
    std::memcpy(raw.data(), t->data, span);
  else
    ggml_backend_tensor_get(t, raw.data(), 0, span);
  Capture::Tensor out{t->type, ne0, ne1, std::vector<char>(size_t(ne0 * ne1) * es)};
  for (int64_t r = 0; r < ne1; ++r)
    std::memcpy(out.bytes.data() + size_t(r * ne0) * es, raw.data() + size_t(r) * nb1, size_t(ne0) * es);
  cap->tensors[name] = std::move(out);
  return true;
}

void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level >= GGML_LOG_LEVEL_WARN || std::getenv("LLAMA_GOLDENS_VERBOSE")) std::fputs(text, stderr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL.gguf OUT_DIR THREADS OVERRIDE TOKEN...\n", argv[0]);
    return 2;
  }
  const std::string model_path = argv[1], out_dir = argv[2];
  const int threads = std::atoi(argv[3]);
  std::vector<llama_token> tokens;
  const std::string override_arg = argv[4];
  for (int i = 5; i < argc; ++i) tokens.push_back(std::atoi(argv[i]));
  const int n = int(tokens.size());

  llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  std::vector<llama_model_kv_override> overrides;
  for (size_t at = 0; override_arg != "-" && at < override_arg.size();) {
    const size_t end = std::min(override_arg.find(',', at), override_arg.size());
    const std::string kv = override_arg.substr(at, end - at);
    const size_t eq = kv.find('=');
    llama_model_kv_override o{};
    if (eq == std::string::npos || eq >= sizeof(o.key)) {
      std::fprintf(stderr, "override '%s' is not KEY=INT\n", kv.c_str());
      return 2;
    }
    o.tag = LLAMA_KV_OVERRIDE_TYPE_INT;
    std::memcpy(o.key, kv.data(), eq);
    o.val_i64 = std::atoll(kv.c_str() + eq + 1);
    overrides.push_back(o);
    at = end + 1;
  }
  if (!overrides.empty()) {
    overrides.push_back(llama_model_kv_override{});  // the list ends with an empty key
    mp.kv_overrides = overrides.data();
  }
  llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
  if (!model) {
    std::fprintf(stderr, "%s: llama.cpp could not load it\n", model_path.c_str());
    return 1;
  }
  Capture cap;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = uint32_t(n < 64 ? 64 : n);
  cp.n_batch = cp.n_ubatch = uint32_t(n);  // one batch, one graph evaluation
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = threads;
  cp.cb_eval = on_eval;
  cp.cb_eval_user_data = &cap;
  // Keys and values in fp32 (the default F16 cache rounds them), no flash attention: the F32
  // goldens then differ from an exact forward only by summation order.
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    std::fprintf(stderr, "%s: no context\n", model_path.c_str());
    return 1;
  }
  llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; ++i) {
    batch.token[i] = tokens[size_t(i)];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) {
    std::fprintf(stderr, "%s: llama_decode failed\n", model_path.c_str());
    return 1;
  }
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  {
    std::ofstream f(out_dir + "/logits.f32", std::ios::binary);
    for (int i = 0; i < n; ++i)
      f.write(reinterpret_cast<const char*>(llama_get_logits_ith(ctx, i)), std::streamsize(n_vocab) * 4);
  }
  std::ofstream man(out_dir + "/manifest.json");
  man << "{\"n_tokens\": " << n << ", \"n_vocab\": " << n_vocab << ", \"n_layer\": " << llama_model_n_layer(model)
      << ", \"tensors\": [";
  bool first = true;
  for (const auto& [name, t] : cap.tensors) {
    std::ofstream f(out_dir + "/" + name + ".bin", std::ios::binary);
    f.write(t.bytes.data(), std::streamsize(t.bytes.size()));
    man << (first ? "" : ", ") << "{\"name\": \"" << name << "\", \"type\": \"" << ggml_type_name(t.type)
        << "\", \"ne\": [" << t.ne0 << ", " << t.ne1 << "]}";
    first = false;
  }
  man << "]}\n";
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
