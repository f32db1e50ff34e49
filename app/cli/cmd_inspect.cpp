// moescope-cli inspect --model DIR|config.json | --preset NAME [--context N] [--json]
// Prints the model's anatomy (parameters total/active by component, KV bytes per token, memory for
// each weight format of anatomy.h's weight_formats() at N tokens of context, by default the
// model's own context) as a table, or as JSON with --json. Needs only config.json; where the
// weights are there too (a checkpoint folder, a GGUF file) it also gives their own footprint: the
// types by component, the bytes and the bytes a decoded token reads ("file_weights").
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "common.h"
#include "moescope/anatomy.h"
#include "moescope/error.h"
#include "moescope/model_spec.h"
#include "moescope/model_weights.h"
#include "moescope/weight_footprint.h"

namespace moescope::cli {

namespace {
// "671.0B", "37.6B", "2.10M".
std::string count_text(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.1fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

std::string row(const std::string& name, const std::string& a, const std::string& b, const std::string& c = {}) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-24s %12s %12s %12s", name.c_str(), a.c_str(), b.c_str(), c.c_str());
  std::string s = buf;
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s + "\n";
}

std::string router_text(const nlohmann::json& r) {
  std::string t = r["scoring"].get<std::string>() + " scores";
  if (r["logit_bias"].get<bool>()) t += ", logit bias";
  if (r["correction_bias"].get<bool>()) t += ", correction bias for selection";
  if (r["group_selection"] != "none")
    t += ", groups: best " + std::to_string(r["topk_group"].get<int>()) + " of " + std::to_string(r["n_group"].get<int>()) +
         " (" + r["group_selection"].get<std::string>() + ")";
  if (r["renormalize"].get<bool>()) t += ", renormalised";
  if (r["scaling"].get<double>() != 1.0) {
    std::ostringstream s;
    s << r["scaling"].get<double>();
    t += ", scaled by " + s.str();
  }
  return t;
}
std::string anatomy_table(const ModelSpec& spec, const nlohmann::json& j) {
  std::ostringstream out;
  const auto& e = j["experts"];
  const auto& a = j["attention"];
  const std::string attention = a["kind"].get<std::string>();
  out << (spec.name.empty() ? spec.architecture : spec.name) << " (" << spec.architecture << ")\n";
  out << "  " << count_text(double(j["total_params"].get<int64_t>())) << " total / "
      << count_text(double(j["active_params"].get<int64_t>())) << " active parameters per token ("
      << count_text(double(j["active_params_without_embedding"].get<int64_t>())) << " without the input embedding)\n";
  out << "  " << j["layers"].get<int>() << " layers (" << e["dense_layers"].get<int>() << " dense, "
      << e["moe_layers"].get<int>() << " MoE) · hidden " << j["hidden_size"].get<int>() << " · vocabulary "
      << j["vocab_size"].get<int>() << " · context " << j["max_position_embeddings"].get<int>() << " · attention "
      << attention << "\n";
  if (e["moe_layers"].get<int>() > 0) {
    out << "  experts: " << e["routed"].get<int>() << " routed (width " << e["expert_width"].get<int>() << "), "
        << e["active"].get<int>() << " active per token";
    if (e["shared"] != "none") out << ", shared expert" << (e["shared"] == "sigmoid_gated" ? " (gated)" : "") << " of width " << e["shared_width"].get<int>();
    out << "\n  router: " << router_text(e["router"]) << "\n";
  }
  out << "\nparameters by component\n" << row("component", "total", "active");
  const auto& p = j["params"];
  const std::pair<const char*, const char*> parts[] = {
      {"embedding", "embedding"},   {"lm_head", "output head"},     {"attention", "attention"},
      {"linear_attention", "linear attention"}, {"norms", "norms"},  {"dense_ffn", "dense FFN layers"},
      {"router", "routers"},        {"shared_experts", "shared experts"}};
  const ParamCounts c = count_params(spec);
  for (auto [key, name] : parts) {
    const int64_t n = p[key].get<int64_t>();
    if (n == 0) continue;
    // Every component but the routed experts is active in full (the embedding: one row is read).
    out << row(name, count_text(double(n)), count_text(double(n)));
  }
  if (c.routed_experts > 0) out << row("routed experts", count_text(double(c.routed_experts)), count_text(double(c.routed_active)));
  out << row("total", count_text(double(c.total)), count_text(double(c.active)));

  out << "\nKV cache: " << kv_figure_text(kv_figure(spec), attention) << "\n";
  const int64_t ctx = j["memory_context_tokens"].get<int64_t>();
  out << "\nmemory at " << ctx << " tokens of context\n" << row("weights as", "weights", "KV cache", "total");
  const double kv = double(j["memory"]["bf16"]["kv_bytes"].get<int64_t>());
  if (j.contains("file_weights")) {
    const auto& f = j["file_weights"];
    const double w = double(f["total_bytes"].get<int64_t>());
    char bpw[32];
    std::snprintf(bpw, sizeof bpw, "%.2f", f["bits_per_weight"].get<double>());
    out << row(std::string("this file (").append(bpw).append(" bits)"), format_bytes_iec(w), format_bytes_iec(kv),
               format_bytes_iec(w + kv));
  }
  for (const WeightFormat& fmt : weight_formats()) {
    const auto& m = j["memory"][fmt.key];
    out << row(fmt.label, format_bytes_iec(double(m["weights_bytes"].get<int64_t>())),
               format_bytes_iec(double(m["kv_bytes"].get<int64_t>())), format_bytes_iec(double(m["total_bytes"].get<int64_t>())));
  }
  out << "  (KV cache in BF16; the _M mixes and Q2_K at their typical bits a weight; --json prints every figure)\n";
  if (j.contains("file_weights")) {
    const auto& f = j["file_weights"];
    out << "\nthis file's weights: " << f["types"].get<std::string>() << "; a decoded token reads "
        << format_bytes_iec(double(f["decode_bytes_per_token"].get<int64_t>())) << " of them\n";
    for (const auto& [part, p] : f["parts"].items()) {
      std::string types;
      for (const auto& [t, b] : p["bytes_by_type"].items()) types.append(types.empty() ? "" : " + ").append(t);
      out << row(part, format_bytes_iec(double(p["bytes"].get<int64_t>())), types);
    }
  }
  if (j.contains("vision")) out << "\n" << j["vision"].get<std::string>() << "\n";
  return out.str();
}
}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args(argc, argv, 2, {"json"}, {"model", "preset", "context"});
  std::filesystem::path source;
  if (auto p = args.get("preset")) source = preset_path(*p);
  else source = model_dir(args);
  ModelSpec spec = load_model_spec(source);
  if (auto p = args.get("preset")) spec.name = *p;
  const long long context = args.get_int("context", default_memory_context(spec));
  if (context <= 0 || context > (1ll << 24)) throw Error("--context must be between 1 and 16777216");
  nlohmann::json j = anatomy_json(spec, context);
  // The weights' own footprint where they are there (mapped, not read: cheap at any size).
  const bool weights_here = !args.get("preset") && (is_gguf_path(source) || (std::filesystem::is_directory(source) && [&] {
    for (const auto& e : std::filesystem::directory_iterator(source))
      if (e.path().extension() == ".safetensors") return true;
    return false;
  }()));
  if (weights_here) {
    auto model = load_model(source);
    j["file_weights"] = footprint_json(weight_footprint(model->spec, model->weights));
  }
  if (args.has("json")) std::cout << j.dump(2) << "\n";
  else std::cout << anatomy_table(spec, j);
  return 0;
}

}  // namespace moescope::cli
