// moescope-cli: the headless face of the engine. The command-line contract is in DESIGN.md;
// scripts rely on it, so every subcommand keeps its options and output formats stable.
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <string_view>
#include <vector>

#include "args.h"
#include "commands.h"
#include "moescope/error.h"

namespace {

struct Entry {
  const char* name;
  moescope::cli::Command run;
  const char* usage;
};

// One line per subcommand; the usage text is what --help prints.
const std::vector<Entry> kCommands = {
    {"generate", moescope::cli::cmd_generate,
     "generate  --model DIR (--prompt TEXT [--chat] [--system TEXT] | --ids 1,2,3) [--max-tokens N]\n"
     "          [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R] [--seed S]\n"
     "          [--backend cpu|cuda] [--weights as-stored|q8_0] [--trace OUT.json] [--probs]\n"
     "          [--disable-experts 'L:E,E;*:E'] [--force-expert [L:]E] [--top-k-experts K] [--ignore-bias]"},
    {"compare", moescope::cli::cmd_compare,
     "compare   --model DIR --prompt TEXT [--chat] [--json] [--weights as-stored|q8_0]\n"
     "          <interventions as for generate>   (both answers, divergence)"},
    {"inspect", moescope::cli::cmd_inspect,
     "inspect   --model DIR|config.json | --preset NAME [--context N] [--json]   (anatomy: parameters, KV, memory)"},
    {"bench", moescope::cli::cmd_bench,
     "bench     --shape NAME|--model DIR [--backend cpu|cuda] [--prompt-tokens N] [--decode-tokens N]\n"
     "          [--layers N] [--weights as-stored|q8_0 (with --model)] [--json]   shapes: olmoe-1b-7b qwen3-30b-a3b deepseek-v2-lite mixtral-8x7b deepseek-v3\n"
     "          gpt-oss-20b gpt-oss-120b qwen3.5-35b-a3b glm-4.5-air glm-4.7-flash"},
    {"stats", moescope::cli::cmd_stats,
     "stats     --trace FILE.json [--csv OUT]   (layer,tokens,cv,maxvio,entropy,dead,distinct per MoE layer)\n"
     "          FILE: a trace, or a routing dump (.jsonl of vLLM/SGLang responses, .npy or .safetensors ids\n"
     "          [seqs,] tokens, layers, top_k) with [--token-ids FILE.npy] [--model DIR|--config FILE|--preset NAME]"},
    {"analyze", moescope::cli::cmd_analyze,
     "analyze   --model DIR --corpus FILE|FOLDER --out DIR [--window N] [--weights as-stored|q8_0]\n"
     "          (routing statistics per domain)"},
    {"forward", moescope::cli::cmd_forward,
     "forward   --model DIR --ids 1,2,3 [--backend cpu|cuda] [--weights as-stored|q8_0] --logits OUT.npy\n"
     "          --trace OUT.json"},
    {"serve", moescope::cli::cmd_serve,
     "serve     --model DIR|FILE [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--backend cpu|cuda]\n"
     "          [--context N] [--max-body BYTES] [--max-request-tokens N] [--http-threads N] [--timeout S]\n"
     "          [--max-connections N] [--weights as-stored|q8_0]\n"
     "          OpenAI-compatible /v1/models, /v1/chat/completions, /v1/completions (stream or not);\n"
     "          \"return_routed_experts\": true adds the routing in vLLM's format, with the weights;\n"
     "          a gpt-oss (harmony) chat answer comes as reasoning_content (analysis) and content (final).\n"
     "          Loopback only unless --host says otherwise, which then needs --api-key. --port 0: a free port\n"
     "          (the line on stdout names it). Requests queue on the one engine; Ctrl-C stops."},
    {"bench-serve", moescope::cli::cmd_bench_serve,
     "bench-serve --url http://127.0.0.1:PORT [--tokens 128] [--requests 3] [--prompt TEXT] [--api-key KEY]\n"
     "          [--json]   streams /v1/completions: client time to first token and tokens/s beside the\n"
     "          server's own decode rate (moescope serve's moescope_timing) and their ratio"},
    {"tokenize", moescope::cli::cmd_tokenize, "tokenize [--model DIR|FILE.gguf] (--text T | --file F) [--add-special]"},
    {"detokenize", moescope::cli::cmd_detokenize, "detokenize [--model DIR|FILE.gguf] --ids 1,2,3 [--skip-special]"},
    {"template", moescope::cli::cmd_template, "template --model DIR --messages FILE.json [--no-generation-prompt]"},
};

void print_help() {
  std::cout << "moescope-cli " MOESCOPE_VERSION
               " - run and inspect Mixture-of-Experts models\n\n"
               "Usage: moescope-cli COMMAND [options]\n\nCommands:\n";
  for (const auto& e : kCommands) std::cout << "  " << e.usage << "\n";
  std::cout << "\nWithout --model, commands use the bundled teaching model. --model takes a checkpoint directory\n"
               "(config.json, *.safetensors, tokenizer.json) or a GGUF file (.gguf, the first part of a split set\n"
               "NAME-00001-of-0000N.gguf, or an Ollama blob); a GGUF model's tokenizer and chat template come from\n"
               "its metadata (or from tokenizer.json / tokenizer_config.json beside the file, which win). GGUF\n"
               "block-quantised weights are read in place. --weights q8_0 quantises the F32/BF16/F16 matrices\n"
               "(projections, experts, LM head; rows a multiple of 32) to Q8_0 at load time, in memory: about\n"
               "half the memory of BF16, the file untouched (--weights as-stored, the default, keeps them).\n"
               "Exit status 0 on success; on bad input one line on stderr and status 1.\n"
               "Log verbosity: SPDLOG_LEVEL=debug|info|warn (default warn), on stderr.\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr so that stdout carries only the command's output (JSON, text, ids).
  auto logger = spdlog::stderr_color_mt("moescope");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);
  spdlog::cfg::load_env_levels();

  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::cout << "moescope-cli " MOESCOPE_VERSION "\n";
    return 0;
  }
  const std::string_view name = argv[1];
  for (const auto& e : kCommands) {
    if (name != e.name) continue;
    try {
      return e.run(argc, argv);
    } catch (const moescope::Error& err) {
      std::cerr << "moescope-cli " << name << ": " << err.what() << "\n";
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "moescope-cli " << name << ": out of memory\n";
      return 1;
    } catch (const std::exception& err) {
      std::cerr << "moescope-cli " << name << ": " << err.what() << "\n";
      return 1;
    }
  }
  std::cerr << "moescope-cli: unknown command '" << name << "' (see moescope-cli --help)\n";
  return 2;
}
