// moescope-cli stats --trace FILE.json [--csv OUT]
// Load-balance metrics per MoE layer from a routing trace (definitions in routing_stats.h).
#include <fstream>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "moescope/error.h"
#include "moescope/routing_stats.h"

namespace moescope::cli {

int cmd_stats(int argc, char** argv) {
  Args args(argc, argv, 2, {}, {"trace", "csv"});
  RoutingTrace trace = RoutingTrace::load(args.require("trace"));
  RoutingStats stats = RoutingStats::for_trace(trace);
  stats.add_all(trace);
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
