// moescope-cli compare --model DIR --prompt TEXT [--chat] [--json] [sampling options] <interventions>
// The same prompt with and without an intervention: both answers, where the routing diverged,
// and how the probability of each token of the original answer changed. A readable report on
// stdout, JSON with --json. Layers are numbered as the model names them (model.layers.N), the
// same numbers the app's views show; "none" (JSON null) where the runs never differ.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "moescope/chat.h"
#include "moescope/compare.h"
#include "moescope/error.h"

namespace moescope::cli {

int cmd_compare(int argc, char** argv) {
  Args args(argc, argv, 2, {"chat", "ignore-bias", "json"},
            {"model", "prompt", "system", "max-tokens", "backend", "context", "threads", "disable-experts",
             "force-expert", "top-k-experts", "weights"});
  const auto dir = model_dir(args);
  auto model = load_model(dir, load_options(args));
  ChatFormat chat = ChatFormat::from_dir(dir);
  const std::string text = args.require("prompt");
  std::vector<int32_t> prompt;
  if (args.has("chat")) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (auto sys = args.get("system")) messages.push_back({{"role", "system"}, {"content", *sys}});
    messages.push_back({{"role", "user"}, {"content", text}});
    prompt = chat.render(messages, true).ids;
  } else {
    prompt = chat.tokenizer().encode(text, true);
  }
  RoutingControl control = routing_control(args, model->spec);
  if (control.empty()) throw Error("give an intervention: --disable-experts, --force-expert, --top-k-experts or --ignore-bias");
  GenerateParams p;
  p.max_tokens = int(args.get_int("max-tokens", 32));
  if (p.max_tokens < 1 || p.max_tokens > 4096) throw Error("--max-tokens must be between 1 and 4096");
  p.stop_ids = chat.stop_ids();
  Session session(model, make_backend(model, backend_options(args)));
  RunComparison c = compare_runs(session, prompt, p, control);
  const Tokenizer& tok = chat.tokenizer();
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& ch : c.changes) {
    const int32_t id = ch.id;
    changes.push_back({{"id", id}, {"text", tok.decode(std::span<const int32_t>(&id, 1))},
                       {"p_original", ch.p_original}, {"p_intervened", ch.p_intervened}});
  }
  const std::vector<int> moe_layers = model->spec.moe_layer_indices();
  const int m = c.first_route_divergence_layer;
  const int layer = m >= 0 && m < int(moe_layers.size()) ? moe_layers[size_t(m)] : -1;
  auto or_null = [](int v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
  const std::string original = tok.decode(c.original, true), intervened = tok.decode(c.intervened, true);
  if (args.has("json")) {
    nlohmann::json j = {{"original", original},
                        {"intervened", intervened},
                        {"first_token_divergence", or_null(c.first_token_divergence)},
                        {"first_route_divergence", {{"position", or_null(c.first_route_divergence_pos)},
                                                    {"layer", or_null(layer)}}},
                        {"routed_overlap", c.routed_overlap},
                        {"original_answer_token_probs", changes}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "original:   " << original << "\n"
            << "intervened: " << intervened << "\n\n";
  std::cout << "first differing answer token: "
            << (c.first_token_divergence < 0 ? std::string("none (the answers are identical)")
                                             : std::to_string(c.first_token_divergence) + " (0 = the first answer token)")
            << "\n";
  std::cout << "first routing change: "
            << (c.first_route_divergence_pos < 0
                    ? std::string("none (every token went to the same experts)")
                    : "position " + std::to_string(c.first_route_divergence_pos) +
                          (c.first_route_divergence_pos < int(prompt.size()) ? " (prompt)" : " (answer)") + ", layer " +
                          std::to_string(layer))
            << "\n";
  char buf[160];
  std::snprintf(buf, sizeof buf, "experts in common: %.1f %% of the top-k sets (mean over the prompt and the original answer)\n",
                100.0 * c.routed_overlap);
  std::cout << buf << "\nthe original answer's tokens: probability without → with the intervention\n";
  for (const auto& ch : changes) {
    std::snprintf(buf, sizeof buf, "  %-20s %7.3f → %7.3f\n", nlohmann::json(ch["text"].get<std::string>()).dump().c_str(),
                  ch["p_original"].get<double>(), ch["p_intervened"].get<double>());
    std::cout << buf;
  }
  return 0;
}

}  // namespace moescope::cli
