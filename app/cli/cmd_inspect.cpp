// moescope-cli inspect --model DIR|config.json | --preset NAME [--context N]
// Prints the model's anatomy as JSON (parameters total/active by component, KV bytes per token,
// memory at BF16/FP8/INT4 for N tokens of context). Needs only config.json.
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "moescope/anatomy.h"
#include "moescope/error.h"
#include "moescope/model_spec.h"

namespace moescope::cli {

int cmd_inspect(int argc, char** argv) {
  Args args(argc, argv, 2, {}, {"model", "preset", "context"});
  std::filesystem::path source;
  if (auto p = args.get("preset")) source = preset_path(*p);
  else source = model_dir(args);
  ModelSpec spec = load_model_spec(source);
  if (auto p = args.get("preset")) spec.name = *p;
  const long long context = args.get_int("context", std::min(spec.max_position, 32768));
  if (context <= 0 || context > (1ll << 24)) throw Error("--context must be between 1 and 16777216");
  std::cout << anatomy_json(spec, context).dump(2) << "\n";
  return 0;
}

}  // namespace moescope::cli
