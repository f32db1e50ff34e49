#pragma once
// Routing dumps: what pipelines that record remote routing (RL rollouts, evaluation runs) save,
// opened lazily and read for statistics without holding the dump in memory.
//   .json        a routing trace (version 1, DESIGN.md) or one server response
//   .jsonl       one vLLM / SGLang / moescope-cli serve response per line (remote_routing.h
//                formats); open() only indexes the lines, a line is parsed when it is read.
//                With n > 1 choices the shared prompt rows count once in the statistics; a
//                sequence is a response's first choice.
//   .npy         expert ids [tokens, layers, top_k] or [sequences, tokens, layers, top_k], any
//                little-endian integer dtype, memory-mapped; negative ids are "none".
//   .safetensors the same ids as an integer tensor ("routed_experts", or the only integer tensor
//                of rank 3/4), optional "token_ids" [tokens] / [sequences, tokens] and float
//                "weights" / "routed_expert_weights" (the ids' shape) beside it; memory-mapped.
// Token ids beside an array (a separate .npy, or "token_ids" in the same .safetensors) mark
// padding: positions whose token id is negative are left out.
// The layer axis may count the MoE layers or all layers (as to_trace); without a model the
// layers are 0..L-1 and the expert count is the largest id + 1.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "moescope/remote_routing.h"
#include "moescope/routing_stats.h"
#include "moescope/routing_trace.h"

namespace moescope {

// progress(done, total): called on the thread that runs stats(), a few times a second at most;
// the units are the dump's own (tokens of an array, lines of JSON lines), done / total is the
// fraction read. cancel: when it turns true, stats() stops at the next chunk it reads (arrays:
// milliseconds; JSON lines: after the line being parsed) with Error("cancelled").
struct DumpProgress {
  std::function<void(int64_t done, int64_t total)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

class RoutingDump {
public:
  // Fast: reads headers / builds a line-offset index (JSONL: one scan for newlines, no JSON parse
  // of every line), memory-maps arrays. Error with one line on unreadable/unsupported/malformed
  // input. token_ids: optional array beside the ids (.npy or a tensor in the same .safetensors).
  static std::shared_ptr<const RoutingDump> open(const std::filesystem::path& path, const remote::TraceShape& shape,
                                                 const std::filesystem::path& token_ids = {});
  ~RoutingDump();
  RoutingDump(const RoutingDump&) = delete;
  RoutingDump& operator=(const RoutingDump&) = delete;

  const std::string& format() const;      // "trace", "jsonl", "npy", "safetensors"
  int64_t sequences() const;              // sequences in the dump (a trace file: 1)
  // As given, n_layers / top_k filled from the file; n_experts stays 0 when neither the model nor
  // the file says it (stats().n_experts() then has the count found).
  const remote::TraceShape& shape() const;
  // One sequence as a routing trace (ids only unless the file has weights; token ids where known,
  // text empty), read on demand; cost proportional to that sequence only. n_experts: shape's, or
  // max id + 1 within it. Error for an index out of range or a malformed sequence.
  RoutingTrace sequence(int64_t index) const;
  // e.g. "response 3 (id chatcmpl-…, line 4), 812 tokens" / "sequence 17, 1,998 tokens" (indices
  // from 0, as sequence() takes them; tokens without padding). Arrays: cheap (reads the sequence's
  // token ids). JSON lines: parses that line, so ask for the rows on screen, not all of them; a
  // line that does not parse gives "response 3 (line 4): unreadable" (sequence() has the error).
  std::string sequence_label(int64_t index) const;
  // Statistics over the whole dump, streamed (flat memory), on every core, with progress and
  // cancel (Error "cancelled").
  RoutingStats stats(const DumpProgress& p = {}) const;

  // Every method is const and keeps no mutable state: sequence() and stats() may run on worker
  // threads while another thread calls the others.
  class Source;

private:
  explicit RoutingDump(std::unique_ptr<Source> source);
  std::unique_ptr<Source> src_;
};

// The statistics of a whole dump in one call: RoutingDump::open(...)->stats().
RoutingStats dump_stats(const std::filesystem::path& path, const remote::TraceShape& shape,
                        const std::filesystem::path& token_ids = {});

}  // namespace moescope
