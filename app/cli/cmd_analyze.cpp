// moescope-cli analyze --model DIR --corpus PATH --out DIR [--window N] [--backend cpu|cuda]
// Routing statistics per domain (a file, or one domain per file of a folder), prefill only.
#include <iostream>

#include "commands.h"
#include "common.h"
#include "moescope/chat.h"
#include "moescope/corpus_analysis.h"
#include "moescope/error.h"

namespace moescope::cli {

int cmd_analyze(int argc, char** argv) {
  Args args(argc, argv, 2, {}, {"model", "corpus", "out", "window", "backend", "threads", "weights"});
  const auto dir = model_dir(args);
  auto domains = read_corpus(args.require("corpus"));
  const std::string out = args.require("out");
  auto model = load_model(dir, load_options(args));
  ChatFormat chat = ChatFormat::from_dir(dir);
  BackendOptions bo = backend_options(args);
  AnalysisOptions opt;
  opt.window = int(args.get_int("window", 256));
  bo.context = opt.window;
  Session session(model, make_backend(model, bo));
  int last_pct = -1;
  opt.progress = [&](size_t done, size_t total) {
    int pct = total ? int(100 * done / total) : 100;
    if (pct / 10 != last_pct / 10) std::cerr << "analyze: " << pct << "%\n";
    last_pct = pct;
  };
  CorpusAnalysis a = analyze_corpus(session, chat.tokenizer(), domains, opt);
  a.write(out, chat.tokenizer());
  for (const auto& d : a.domains) std::cerr << "analyze: " << d.name << ": " << d.tokens << " tokens\n";
  std::cout << out << "\n";
  return 0;
}

}  // namespace moescope::cli
