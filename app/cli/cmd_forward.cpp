// moescope-cli forward --model DIR --ids 1,2,3 [--backend cpu|cuda] --logits OUT.npy --trace OUT.json
// Runs the ids through the model in one prefill and writes float32 logits [n_tokens, vocab] and
// the routing trace.
#include <iostream>

#include "commands.h"
#include "common.h"
#include "moescope/error.h"
#include "moescope/npy.h"
#include "moescope/session.h"

namespace moescope::cli {

int cmd_forward(int argc, char** argv) {
  Args args(argc, argv, 2, {"probs"}, {"model", "ids", "backend", "logits", "trace", "context", "threads", "weights"});
  const auto ids = args.get_int_list("ids");
  if (!args.has("logits") && !args.has("trace")) throw Error("give --logits OUT.npy and/or --trace OUT.json");
  auto model = load_model(model_dir(args), load_options(args));
  Session session(model, make_backend(model, backend_options(args)));
  std::vector<int32_t> tokens(ids.begin(), ids.end());
  ForwardResult r = session.prefill(tokens, /*all_logits=*/true);
  if (auto path = args.get("logits"))
    write_npy(*path, r.logits.data(), {int64_t(r.n_tokens), int64_t(r.vocab)});
  if (auto path = args.get("trace")) session.trace().save(*path);
  std::cerr << "forward: " << r.n_tokens << " tokens on " << session.backend().name() << "\n";
  return 0;
}

}  // namespace moescope::cli
