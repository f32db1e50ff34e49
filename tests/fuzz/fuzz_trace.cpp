// libFuzzer target: a routing-trace JSON file (version 1, see DESIGN.md) loaded with
// RoutingTrace::from_json, written back with to_json and loaded again: the round trip must hold.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "moescope/routing_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const moescope::RoutingTrace trace = moescope::RoutingTrace::from_json(j);
    const nlohmann::json again = trace.to_json();
    (void)moescope::RoutingTrace::from_json(again);  // what we write, we must read back
  } catch (const moescope::Error&) {
  }
  return 0;
}
