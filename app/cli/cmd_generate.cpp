// moescope-cli generate --model DIR (--prompt TEXT | --ids 1,2,3) [--chat] [--system TEXT]
//     [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
//     [--repetition-penalty R] [--seed S] [--backend cpu|cuda] [--trace OUT.json]
//     [--disable-experts L:E,E;...] [--force-expert [L:]E] [--top-k-experts K] [--ignore-bias]
// Streams the generated text to stdout as it is produced (special tokens left out, except a
// harmony model's channel markers with --chat: `<|channel|>analysis<|message|>...`); speed figures
// go to stderr.
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "moescope/chat.h"
#include "moescope/error.h"
#include "moescope/session.h"

namespace moescope::cli {

namespace {

class StdoutStreamer : public GenerationObserver {
public:
  StdoutStreamer(const Tokenizer* tok, bool keep_special) : tok_(tok) {
    if (tok_) decoder_ = std::make_unique<StreamingDecoder>(*tok_, /*skip_special_tokens=*/!keep_special);
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
             "force-expert", "top-k-experts", "weights"});
  const auto dir = model_dir(args);
  auto model = load_model(dir, load_options(args));
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
  p.control = routing_control(args, s);

  Session session(model, make_backend(model, backend_options(args)));
  if (chat) {
    const Tokenizer* tok = &chat->tokenizer();
    session.token_text = [tok](int32_t id) { return tok->decode(std::span<const int32_t>(&id, 1)); };
  }
  StdoutStreamer out(chat ? &chat->tokenizer() : nullptr, chat && chat->harmony() && args.has("chat"));
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
