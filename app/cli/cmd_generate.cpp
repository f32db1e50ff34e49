// moescope-cli generate --model DIR (--prompt TEXT | --ids 1,2,3) [--chat] [--system TEXT]
//     [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
//     [--repetition-penalty R] [--seed S] [--backend cpu|cuda] [--trace OUT.json]
//     [--disable-experts L:E,E;...] [--force-expert [L:]E] [--top-k-experts K] [--ignore-bias]
// Streams the generated text to stdout as it is produced; speed figures go to stderr.
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "moescope/chat.h"
#include "moescope/error.h"
#include "moescope/session.h"

namespace moescope::cli {

namespace {

// "*:3,5;2:7" -> experts 3 and 5 off in every MoE layer, expert 7 off in layer 2.
void parse_disabled(const std::string& spec, const ModelSpec& s, RoutingControl& c) {
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
      int l = std::stoi(layer_part);
      if (l < 0 || l >= s.n_layers || !s.moe_layer[size_t(l)])
        throw Error("--disable-experts: layer " + layer_part + " is not a MoE layer");
      layers.push_back(l);
    }
    size_t p = 0;
    while (p < experts.size()) {
      size_t q = experts.find(',', p);
      if (q == std::string::npos) q = experts.size();
      int e = std::stoi(experts.substr(p, q - p));
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

class StdoutStreamer : public GenerationObserver {
public:
  explicit StdoutStreamer(const Tokenizer* tok) : tok_(tok) {
    if (tok_) decoder_ = std::make_unique<StreamingDecoder>(*tok_, /*skip_special_tokens=*/true);
  }
  void on_token(int32_t id, double) override {
    if (decoder_) std::cout << decoder_->push(id);
    else std::cout << (first_ ? "" : ",") << id;
    first_ = false;
    std::cout.flush();
  }
  void finish() {
    if (decoder_) std::cout << decoder_->flush();
    std::cout << std::endl;
  }

private:
  const Tokenizer* tok_;
  std::unique_ptr<StreamingDecoder> decoder_;
  bool first_ = true;
};

}  // namespace

int cmd_generate(int argc, char** argv) {
  Args args(argc, argv, 2, {"chat", "ignore-bias", "probs"},
            {"model", "prompt", "ids", "system", "max-tokens", "temperature", "top-k", "top-p", "min-p",
             "repetition-penalty", "seed", "backend", "trace", "context", "threads", "disable-experts",
             "force-expert", "top-k-experts"});
  const auto dir = model_dir(args);
  auto model = load_model(dir);
  const ModelSpec& s = model->spec;

  std::optional<ChatFormat> chat;
  std::vector<int32_t> prompt;
  if (args.has("prompt")) {
    chat = ChatFormat::from_dir(dir);
    const std::string text = *args.get("prompt");
    if (args.has("chat")) {
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      if (auto sys = args.get("system")) messages.push_back({{"role", "system"}, {"content", *sys}});
      messages.push_back({{"role", "user"}, {"content", text}});
      ChatPrompt p = chat->render(messages, true);
      if (p.used_fallback) std::cerr << "note: " << p.fallback_reason << "; using the plain format\n";
      prompt = p.ids;
    } else {
      prompt = chat->tokenizer().encode(text, /*add_special_tokens=*/true);
    }
  } else if (args.has("ids")) {
    for (int id : args.get_int_list("ids")) prompt.push_back(id);
    if (args.has("chat")) throw Error("--chat needs --prompt");
  } else {
    throw Error("give --prompt TEXT or --ids 1,2,3");
  }
  if (prompt.empty()) throw Error("the prompt is empty");

  GenerateParams p;
  p.max_tokens = int(args.get_int("max-tokens", 128));
  if (p.max_tokens < 1 || p.max_tokens > 1 << 20) throw Error("--max-tokens must be between 1 and 1048576");
  p.sampling.temperature = float(args.get_double("temperature", 0.0));
  p.sampling.top_k = int(args.get_int("top-k", 0));
  p.sampling.top_p = float(args.get_double("top-p", 1.0));
  p.sampling.min_p = float(args.get_double("min-p", 0.0));
  p.sampling.repetition_penalty = float(args.get_double("repetition-penalty", 1.0));
  p.sampling.seed = uint64_t(args.get_int("seed", 0));
  if (p.sampling.temperature < 0 || p.sampling.top_p <= 0 || p.sampling.top_p > 1 || p.sampling.min_p < 0 ||
      p.sampling.min_p > 1 || p.sampling.repetition_penalty <= 0 || p.sampling.top_k < 0)
    throw Error("sampling settings out of range (temperature >= 0, 0 < top-p <= 1, 0 <= min-p <= 1, repetition-penalty > 0)");
  if (chat) p.stop_ids = chat->stop_ids();
  p.record_probs = args.has("probs");
  if (auto d = args.get("disable-experts")) parse_disabled(*d, s, p.control);
  if (auto f = args.get("force-expert")) {
    size_t colon = f->find(':');
    p.control.forced_layer = colon == std::string::npos ? -1 : std::stoi(f->substr(0, colon));
    p.control.forced_expert = std::stoi(colon == std::string::npos ? *f : f->substr(colon + 1));
    if (p.control.forced_expert < 0 || p.control.forced_expert >= s.moe.router.n_experts)
      throw Error("--force-expert: expert out of range");
  }
  p.control.top_k = int(args.get_int("top-k-experts", 0));
  if (p.control.top_k < 0 || p.control.top_k > s.moe.router.n_experts) throw Error("--top-k-experts out of range");
  p.control.ignore_bias = args.has("ignore-bias");

  Session session(model, make_backend(model, backend_options(args)));
  if (chat) {
    const Tokenizer* tok = &chat->tokenizer();
    session.token_text = [tok](int32_t id) { return tok->decode(std::span<const int32_t>(&id, 1)); };
  }
  StdoutStreamer out(chat ? &chat->tokenizer() : nullptr);
  GenerateResult r = session.generate(prompt, p, &out);
  out.finish();
  if (auto path = args.get("trace")) session.trace().save(*path);
  const double dps = r.decode_steps ? r.decode_steps / r.decode_seconds : 0.0;
  std::cerr << "[" << session.backend().name() << "] prompt " << r.prompt_tokens << " tokens in "
            << r.prefill_seconds << " s; " << r.generated.size() << " tokens, " << dps << " tokens/s; stop: "
            << stop_reason_name(r.reason) << "\n";
  return 0;
}

}  // namespace moescope::cli
