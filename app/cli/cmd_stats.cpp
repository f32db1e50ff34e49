// moescope-cli stats --trace FILE [--csv OUT] [--model DIR | --config FILE.json | --preset NAME]
//                    [--token-ids FILE.npy]
// Load-balance metrics per MoE layer (definitions in routing_stats.h) of a routing trace, or of a
// routing dump (moescope/routing_dump.h): JSON lines of vLLM / SGLang responses, or a NumPy array
// or safetensors tensor of expert ids [tokens, layers, top_k] / [sequences, tokens, layers, top_k]
// (memory-mapped, streamed on every core) with the token ids beside it.
// The model (its config.json or a preset) says which layers are MoE and how many experts there
// are; without it the dump's own shape is used.
#include <fstream>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "moescope/error.h"
#include "moescope/model_spec.h"
#include "moescope/routing_dump.h"

namespace moescope::cli {

int cmd_stats(int argc, char** argv) {
  Args args(argc, argv, 2, {}, {"trace", "csv", "model", "config", "preset", "token-ids"});
  remote::TraceShape shape;
  const int given = int(args.has("model")) + int(args.has("config")) + int(args.has("preset"));
  if (given > 1) throw Error("give at most one of --model, --config and --preset");
  if (auto m = args.get("model")) shape = remote::trace_shape_of(load_model_spec(model_dir(args)));
  if (auto c = args.get("config")) shape = remote::trace_shape_of(load_model_spec(*c));
  if (auto p = args.get("preset")) shape = remote::trace_shape_of(load_model_spec(preset_path(*p)));
  const RoutingStats stats = dump_stats(args.require("trace"), shape, args.get_or("token-ids", ""));
  const std::string csv = balance_csv(stats);
  if (auto out = args.get("csv")) {
    std::ofstream f(*out, std::ios::binary);
    if (!(f << csv)) throw Error("cannot write " + *out);
  } else {
    std::cout << csv;
  }
  return 0;
}

}  // namespace moescope::cli
