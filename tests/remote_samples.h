#pragma once
// The model of the stored remote-routing samples (tests/data/remote, tests/tools/gen_remote_samples.py):
// 3 layers, layer 0 dense, 8 experts, top-2. For test_remote_routing and test_routing_dump.
#include "moescope/remote_routing.h"

namespace moescope::test {

inline remote::TraceShape sample_shape() {
  remote::TraceShape s;
  s.model = "sample";
  s.n_experts = 8;
  s.top_k = 2;
  s.n_layers = 3;
  s.moe_layers = {1, 2};
  return s;
}

}  // namespace moescope::test
