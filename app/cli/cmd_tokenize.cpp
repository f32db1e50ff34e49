// moescope-cli tokenize / detokenize: text <-> token ids with a model's tokenizer (a directory's
// tokenizer.json + tokenizer_config.json are enough, no weights needed; a GGUF file's metadata;
// without --model, the bundled teaching model's).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "moescope/error.h"
#include "moescope/tokenizer.h"

namespace moescope::cli {

namespace {

// --model DIR or FILE.gguf, else the bundled teaching model (as every other command).
Tokenizer load_model_tokenizer(const Args& args) { return Tokenizer::from_dir(model_dir(args)); }

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

// Hidden benchmark mode (tests/tools/bench_tokenizer.py): encodes the file in chunks that end at
// the first newline after every 4096 bytes, as the Python side does, and reports throughput.
int run_bench(const Tokenizer& tok, const std::string& text, bool add_special) {
  std::vector<std::string_view> chunks;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', std::min(text.size(), pos + 4096));
    end = end == std::string::npos ? text.size() : end + 1;
    chunks.emplace_back(text.data() + pos, end - pos);
    pos = end;
  }
  const auto t0 = std::chrono::steady_clock::now();
  size_t tokens = 0;
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over the ids, so the caller can check them
  for (const auto& c : chunks) {
    const auto ids = tok.encode(c, add_special);
    tokens += ids.size();
    for (const int32_t id : ids) hash = (hash ^ uint64_t(uint32_t(id))) * 0x100000001b3ull;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "{\"bytes\": " << text.size() << ", \"chunks\": " << chunks.size()
            << ", \"tokens\": " << tokens << ", \"ids_hash\": " << hash << ", \"seconds\": " << s
            << ", \"mb_per_s\": " << double(text.size()) / 1e6 / s << "}\n";
  return 0;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  const Args args(argc, argv, 2, {"add-special", "bench"}, {"model", "text", "file"});
  const bool has_text = args.has("text"), has_file = args.has("file");
  if (has_text == has_file) throw Error("give exactly one of --text T or --file F");
  const Tokenizer tok = load_model_tokenizer(args);
  const std::string text = has_text ? args.require("text") : read_text_file(args.require("file"));
  if (args.has("bench")) return run_bench(tok, text, args.has("add-special"));

  const std::vector<int32_t> ids = tok.encode(text, args.has("add-special"));
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::cout << out;
  return 0;
}

int cmd_detokenize(int argc, char** argv) {
  const Args args(argc, argv, 2, {"skip-special"}, {"model", "ids"});
  const Tokenizer tok = load_model_tokenizer(args);
  const std::vector<int> list = args.get_int_list("ids");
  const std::vector<int32_t> ids(list.begin(), list.end());
  std::cout << tok.decode(ids, args.has("skip-special"));
  std::cout.flush();
  return 0;
}

}  // namespace moescope::cli
