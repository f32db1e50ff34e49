#include "common.h"

#include <cstdlib>
#include <iostream>

#include "moescope/error.h"
#include "moescope/model_spec.h"
#include "moescope/resources.h"

namespace moescope::cli {

namespace fs = std::filesystem;

fs::path model_dir(const Args& args) {
  if (auto m = args.get("model")) {
    if (!fs::exists(*m)) throw Error("model " + *m + " does not exist (a checkpoint directory or a GGUF file)");
    return *m;
  }
  const fs::path bundled = bundled_model_dir();
  if (bundled.empty()) throw Error("no --model given and the bundled teaching model was not found");
  return bundled;
}

fs::path preset_path(const std::string& name) {
  std::string list;
  for (const std::string& p : preset_names()) {
    list += (list.empty() ? "" : ", ") + p;
    if (name != p) continue;
    fs::path path = moescope::preset_path(name);
    if (path.empty()) throw Error("preset " + name + " is not installed");
    return path;
  }
  throw Error("unknown preset '" + name + "' (presets: " + list + ")");
}

// "*:3,5;2:7" -> experts 3 and 5 off in every MoE layer, expert 7 off in layer 2.
static int parse_int(const std::string& text, const char* option) {
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size()) throw Error(std::string(option) + ": '" + text + "' is not a number");
  return v;
}

static void parse_disabled(const std::string& spec, const ModelSpec& s, RoutingControl& c) {
  const int E = s.moe.router.n_experts;
  c.disabled.assign(size_t(s.n_layers), {});
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(';', start);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    size_t colon = item.find(':');
    std::string layer_part = colon == std::string::npos ? "*" : item.substr(0, colon);
    std::string experts = colon == std::string::npos ? item : item.substr(colon + 1);
    std::vector<int> layers;
    if (layer_part == "*") layers = s.moe_layer_indices();
    else {
      int l = parse_int(layer_part, "--disable-experts");
      if (l < 0 || l >= s.n_layers || !s.moe_layer[size_t(l)])
        throw Error("--disable-experts: layer " + layer_part + " is not a MoE layer");
      layers.push_back(l);
    }
    size_t p = 0;
    while (p < experts.size()) {
      size_t q = experts.find(',', p);
      if (q == std::string::npos) q = experts.size();
      int e = parse_int(experts.substr(p, q - p), "--disable-experts");
      if (e < 0 || e >= E) throw Error("--disable-experts: expert " + std::to_string(e) + " out of range 0.." + std::to_string(E - 1));
      for (int l : layers) {
        auto& row = c.disabled[size_t(l)];
        row.resize(size_t(E), 0);
        row[size_t(e)] = 1;
      }
      p = q + 1;
    }
  }
}

RoutingControl routing_control(const Args& args, const ModelSpec& s) {
  RoutingControl c;
  if (auto d = args.get("disable-experts")) parse_disabled(*d, s, c);
  if (auto f = args.get("force-expert")) {
    size_t colon = f->find(':');
    c.forced_layer = colon == std::string::npos ? -1 : parse_int(f->substr(0, colon), "--force-expert");
    c.forced_expert = parse_int(colon == std::string::npos ? *f : f->substr(colon + 1), "--force-expert");
    if (c.forced_expert < 0 || c.forced_expert >= s.moe.router.n_experts) throw Error("--force-expert: expert out of range");
  }
  if (args.has("top-k-experts")) {
    const int E = s.moe.router.n_experts;
    c.top_k = int(args.get_int("top-k-experts", 0));
    if (c.top_k < 1 || c.top_k > E)
      throw Error("--top-k-experts must be between 1 and " + std::to_string(E) + " (the model routes each token to " +
                  std::to_string(s.moe.router.top_k) + "; leave the option out to keep that)");
  }
  c.ignore_bias = args.has("ignore-bias");
  // Every routed expert of a layer disabled: only the shared expert(s) remain there, or nothing.
  for (int l : s.moe_layer_indices()) {
    int off = 0;
    for (int e = 0; e < s.moe.router.n_experts; ++e) off += c.is_disabled(l, e) ? 1 : 0;
    if (off < s.moe.router.n_experts) continue;
    if (s.moe.shared == SharedExperts::None)
      throw Error("--disable-experts: every routed expert of layer " + std::to_string(l) +
                  " is disabled and the model has no shared expert: that layer's MoE block would add nothing");
    std::cerr << "note: --disable-experts: every routed expert of layer " << l
              << " is disabled: only the shared expert runs there\n";
  }
  return c;
}

LoadOptions load_options(const Args& args) {
  LoadOptions o;
  if (auto w = args.get("weights")) o.weights = parse_weights_mode(*w);
  return o;
}

BackendOptions backend_options(const Args& args) {
  BackendOptions o;
  o.kind = args.get_or("backend", "auto");
  o.context = int(args.get_int("context", 0));
  o.threads = int(args.get_int("threads", 0));
  if (o.context < 0) throw Error("--context must be positive");
  return o;
}

}  // namespace moescope::cli
