// moescope-cli compare --model DIR --prompt TEXT [--chat] [sampling options] <interventions>
// The same prompt with and without an intervention: both answers, where the routing diverged,
// and how the probability of each token of the original answer changed. JSON on stdout.
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "moescope/chat.h"
#include "moescope/compare.h"
#include "moescope/error.h"

namespace moescope::cli {

int cmd_compare(int argc, char** argv) {
  Args args(argc, argv, 2, {"chat", "ignore-bias"},
            {"model", "prompt", "system", "max-tokens", "backend", "context", "threads", "disable-experts",
             "force-expert", "top-k-experts"});
  const auto dir = model_dir(args);
  auto model = load_model(dir);
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
  nlohmann::json j = {{"original", tok.decode(c.original, true)},
                      {"intervened", tok.decode(c.intervened, true)},
                      {"first_token_divergence", c.first_token_divergence},
                      {"first_route_divergence", {{"position", c.first_route_divergence_pos},
                                                  {"moe_layer_index", c.first_route_divergence_layer}}},
                      {"routed_overlap", c.routed_overlap},
                      {"original_answer_token_probs", changes}};
  std::cout << j.dump(2) << "\n";
  return 0;
}

}  // namespace moescope::cli
