// libFuzzer target: the SSE + JSON + base64 path of the remote routing parsers
// (moescope/remote_routing.h). The input is fed to a StreamAssembler in pieces whose sizes come
// from its first byte (so splits land anywhere), then parsed whole as a non-streaming body and as
// base64; every path must end in a result or a moescope::Error, and a parsed response must turn
// into a trace or an Error.
#include <cstdint>
#include <string_view>

#include "moescope/error.h"
#include "moescope/remote_routing.h"

using namespace moescope::remote;

namespace {
TraceShape shape() {
  TraceShape s;
  s.n_experts = 8;
  s.top_k = 2;
  s.n_layers = 3;
  s.moe_layers = {1, 2};
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 61;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const RoutingGeometry g{3, 2};
  try {
    StreamAssembler a(g);
    for (size_t pos = 0; pos < text.size(); pos += step) a.feed(text.substr(pos, step));
    a.finish();
    (void)to_trace(a.result(), 0, shape());
  } catch (const moescope::Error&) {
  }
  try {
    const ResponseRouting r = parse_response_text(text, g);
    for (const auto& c : r.choices) (void)to_trace(r, c.index, shape());
    (void)to_trace(r, 0, {});
  } catch (const moescope::Error&) {
  }
  try {
    (void)base64_decode(text);
  } catch (const moescope::Error&) {
  }
  return 0;
}
