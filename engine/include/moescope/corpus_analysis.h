#pragma once
// Corpus analysis: run text through the model (prefill only), one "domain" per file, and
// aggregate how the router treats each domain: expert load per domain and layer, which tokens
// each expert receives most, how concentrated each token's routing is, how consistent routing is
// from one MoE layer to the next, and how different the domains' expert distributions are
// (Jensen-Shannon divergence). `moescope-cli analyze` and the app's analysis view use it.
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moescope/session.h"
#include "moescope/tokenizer.h"

namespace moescope {

struct Domain {
  std::string name;  // file stem
  std::string text;
};

// A file is one domain; a folder gives one domain per regular file (sorted by name).
std::vector<Domain> read_corpus(const std::filesystem::path& path);

struct DomainRouting {
  std::string name;
  int64_t tokens = 0;
  std::vector<std::vector<int64_t>> load;  // [moe_layers][n_experts]: selections
  std::vector<std::vector<int64_t>> top1;  // [moe_layers][n_experts]: times expert e was the top choice
  std::vector<double> consistency;         // [moe_layers - 1]: NMI of top expert, layer m vs m+1
};

struct CorpusAnalysis {
  std::vector<int> moe_layers;
  int n_experts = 0;
  std::vector<DomainRouting> domains;
  // token id -> per MoE layer, top-1 expert counts (sparse: expert -> count)
  std::map<int32_t, std::vector<std::map<int, int64_t>>> token_top1;
  std::map<int32_t, int64_t> token_count;

  // JS divergence (natural log, in [0, ln 2]) between two domains' load distributions at a layer.
  double js_divergence(size_t domain_a, size_t domain_b, int moe_index) const;
  // Writes load.csv, balance.csv, specialisation.csv, tokens.csv, consistency.csv,
  // divergence.csv and summary.json into dir (created if needed).
  void write(const std::filesystem::path& dir, const Tokenizer& tokenizer) const;
};

struct AnalysisOptions {
  int window = 256;  // tokens per prefill (the cache is reset between windows)
  std::function<void(size_t done, size_t total)> progress;  // tokens processed / total
  const std::atomic<bool>* cancel = nullptr;
};

// Runs every domain's tokens through `session` (prefill only) and aggregates the routing.
CorpusAnalysis analyze_corpus(Session& session, const Tokenizer& tokenizer, const std::vector<Domain>& domains,
                              const AnalysisOptions& options = {});

}  // namespace moescope
