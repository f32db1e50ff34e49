// Routing dumps into load-balance statistics (moescope/routing_dump.h).
#include "moescope/routing_dump.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "moescope/error.h"
#include "moescope/npy.h"

namespace moescope {

using remote::TraceShape;

namespace {

enum class Kind { Json, JsonLines, Npy };

Kind kind_of(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".jsonl" || ext == ".ndjson") return Kind::JsonLines;
  if (ext == ".npy") return Kind::Npy;
  if (ext == ".json") return Kind::Json;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path.string());
  char c = 0;
  in.get(c);
  if (c == '\x93') return Kind::Npy;
  std::string line;
  std::getline(in, line);
  std::string rest;
  // one JSON document per line or one document over many lines: a second line that opens an object
  if (std::getline(in, rest) && !rest.empty() && rest[0] == '{' && !line.empty() && line.back() == '}') return Kind::JsonLines;
  return Kind::Json;
}

// The shape a response's routing fills: the model's, with the expert count found in a first pass
// when the model is not known.
remote::RoutingGeometry geometry_of(const TraceShape& s) { return {s.n_layers, s.top_k}; }

// Adds a trace's rows [first, size) to the stats (created on first use).
void add_rows(std::optional<RoutingStats>& stats, const RoutingTrace& t, size_t first) {
  if (!stats) stats.emplace(t.n_experts(), t.moe_layers());
  stats->add(t, first, t.size());
}

// Every choice of a response; the prompt rows (shared by the choices) once.
template <class F>
void each_choice_trace(const remote::ResponseRouting& r, const TraceShape& shape, F&& f) {
  if (r.choices.empty()) {
    f(remote::to_trace(r, 0, shape), size_t(0));
    return;
  }
  bool first = true;
  for (const auto& c : r.choices) {
    const RoutingTrace t = remote::to_trace(r, c.index, shape);
    f(t, first ? size_t(0) : size_t(r.prompt.n_tokens));
    first = false;
  }
}

RoutingStats json_lines(const std::filesystem::path& path, TraceShape shape) {
  auto pass = [&](const std::function<void(const remote::ResponseRouting&, size_t line)>& each) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path.string());
    std::string text;
    size_t line = 0;
    while (std::getline(in, text)) {
      ++line;
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        each(remote::parse_response_text(text, geometry_of(shape)), line);
      } catch (const Error& e) {
        throw Error(path.filename().string() + " line " + std::to_string(line) + ": " + e.what());
      }
    }
    if (line == 0) throw Error(path.filename().string() + ": empty file");
  };
  if (shape.n_experts <= 0) {  // first pass: the largest expert id
    int n = 0;
    pass([&](const remote::ResponseRouting& r, size_t) {
      each_choice_trace(r, shape, [&](const RoutingTrace& t, size_t) { n = std::max(n, t.n_experts()); });
    });
    shape.n_experts = n;
  }
  std::optional<RoutingStats> stats;
  pass([&](const remote::ResponseRouting& r, size_t) {
    each_choice_trace(r, shape, [&](const RoutingTrace& t, size_t first) {
      if (stats && (t.moe_layers() != stats->moe_layers()))
        throw Error("this response's layers differ from the first one's (responses of another model?)");
      add_rows(stats, t, first);
    });
  });
  if (!stats) throw Error(path.filename().string() + ": no responses");
  return std::move(*stats);
}

RoutingStats npy(const std::filesystem::path& path, TraceShape shape, const std::filesystem::path& token_ids) {
  const MappedNpy a(path);
  const auto& dims = a.shape();
  const std::string name = path.filename().string();
  if (dims.size() != 3 && dims.size() != 4)
    throw Error(name + ": expected expert ids [tokens, layers, top_k] or [sequences, tokens, layers, top_k], got " +
                std::to_string(dims.size()) + " dimensions");
  const int L = int(dims[dims.size() - 2]), K = int(dims.back());
  if (L <= 0 || K <= 0 || L > 4096 || K > 4096) throw Error(name + ": layers and top_k must be in 1..4096");
  const size_t tokens = a.count() / (size_t(L) * size_t(K));
  std::vector<int> moe_layers, rows;
  remote::layer_map(L, shape, moe_layers, rows);
  if (shape.top_k > 0 && K > shape.top_k)
    throw Error(name + ": " + std::to_string(K) + " experts a layer; the model selects " + std::to_string(shape.top_k));

  std::optional<MappedNpy> ids;
  if (!token_ids.empty()) {
    ids.emplace(token_ids);
    const std::vector<int64_t> lead(dims.begin(), dims.end() - 2);
    if (ids->shape() != lead)
      throw Error(token_ids.filename().string() + ": token ids must have the shape of the routing's leading dimensions");
  }
  auto padding = [&](size_t t) { return ids && ids->at(t) < 0; };
  const size_t per = size_t(L) * size_t(K);
  int n_experts = shape.n_experts;
  if (n_experts <= 0) {  // first pass: the largest id
    int64_t top = -1;
    for (size_t t = 0; t < tokens; ++t) {
      if (padding(t)) continue;
      for (size_t m = 0; m < rows.size(); ++m)
        for (int k = 0; k < K; ++k) top = std::max(top, a.at(t * per + size_t(rows[m]) * size_t(K) + size_t(k)));
      if (t % 4096 == 4095) a.release_before((t + 1) * per);
    }
    if (top > 0xFFFE) throw Error(name + ": expert id " + std::to_string(top) + " out of range");
    n_experts = int(std::max<int64_t>(top + 1, K));
  }
  RoutingStats stats(n_experts, moe_layers);
  std::vector<int32_t> row(rows.size() * size_t(K));
  for (size_t t = 0; t < tokens; ++t) {
    if (padding(t)) continue;
    for (size_t m = 0; m < rows.size(); ++m)
      for (int k = 0; k < K; ++k) {
        const int64_t e = a.at(t * per + size_t(rows[m]) * size_t(K) + size_t(k));
        if (e >= n_experts)
          throw Error(name + ": expert id " + std::to_string(e) + " (token " + std::to_string(t) + ") is not below the model's " +
                      std::to_string(n_experts) + " experts");
        row[m * size_t(K) + size_t(k)] = e < 0 ? -1 : int32_t(e);
      }
    stats.add_token(row.data(), K);
    if (t % 4096 == 4095) a.release_before((t + 1) * per);  // memory: the statistics, not the file
  }
  return stats;
}

}  // namespace

RoutingStats dump_stats(const std::filesystem::path& path, const TraceShape& shape, const std::filesystem::path& token_ids) {
  if (!std::filesystem::exists(path)) throw Error("cannot open " + path.string());
  const Kind kind = kind_of(path);
  if (!token_ids.empty() && kind != Kind::Npy) throw Error("token ids beside the routing apply to .npy dumps only");
  if (kind == Kind::Npy) return npy(path, shape, token_ids);
  if (kind == Kind::JsonLines) return json_lines(path, shape);
  // One JSON document: a routing trace, else one response.
  std::ifstream in(path, std::ios::binary);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    RoutingTrace::load(path);  // its message for invalid JSON
    throw Error(path.filename().string() + ": invalid JSON");
  }
  if (j.is_object() && j.contains("version")) {
    const RoutingTrace t = RoutingTrace::from_json(j);
    RoutingStats s = RoutingStats::for_trace(t);
    s.add_all(t);
    return s;
  }
  std::optional<RoutingStats> stats;
  try {
    const remote::ResponseRouting r = remote::parse_response(j, geometry_of(shape));
    TraceShape sized = shape;
    if (sized.n_experts <= 0)  // one expert count for every choice
      each_choice_trace(r, shape, [&](const RoutingTrace& t, size_t) { sized.n_experts = std::max(sized.n_experts, t.n_experts()); });
    each_choice_trace(r, sized, [&](const RoutingTrace& t, size_t first) { add_rows(stats, t, first); });
  } catch (const Error& e) {
    throw Error(path.filename().string() + ": " + e.what());
  }
  return std::move(*stats);
}

}  // namespace moescope
