#pragma once
// Routing dumps: what pipelines that record remote routing save, read for statistics without
// holding the dump in memory.
//   .json   a routing trace (version 1, DESIGN.md) or one server response
//   .jsonl  one vLLM / SGLang / moescope-cli serve response per line (remote_routing.h formats);
//           read a line at a time. With n > 1 choices the shared prompt rows count once.
//   .npy    expert ids [tokens, layers, top_k] or [sequences, tokens, layers, top_k], any
//           little-endian integer dtype, memory-mapped and streamed; negative ids are "none".
//           Token ids beside it (token_ids: [tokens] or [sequences, tokens]) mark padding:
//           positions whose token id is negative are left out.
// The layer axis may count the MoE layers or all layers (as to_trace); without a model the
// layers are 0..L-1 and the expert count is the largest id + 1 (found by a first pass).
#include <filesystem>

#include "moescope/remote_routing.h"
#include "moescope/routing_stats.h"

namespace moescope {

RoutingStats dump_stats(const std::filesystem::path& path, const remote::TraceShape& shape,
                        const std::filesystem::path& token_ids = {});

}  // namespace moescope
