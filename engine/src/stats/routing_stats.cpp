#include "moescope/routing_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "moescope/error.h"

namespace moescope {

LayerBalance balance_of(const std::vector<int64_t>& load, int64_t tokens, int layer) {
  LayerBalance b;
  b.layer = layer;
  b.tokens = tokens;
  const size_t n = load.size();
  if (n == 0) return b;
  double sum = 0.0;
  int64_t mx = 0;
  for (int64_t l : load) {
    sum += double(l);
    mx = std::max(mx, l);
    if (l == 0) ++b.dead;
  }
  b.distinct = int(n) - b.dead;
  if (sum <= 0.0) return b;
  const double mean = sum / double(n);
  double var = 0.0, ent = 0.0;
  for (int64_t l : load) {
    var += (double(l) - mean) * (double(l) - mean);
    if (l > 0) {
      const double p = double(l) / sum;
      ent -= p * std::log(p);
    }
  }
  b.cv = std::sqrt(var / double(n)) / mean;
  b.maxvio = double(mx) / mean - 1.0;
  b.entropy = n > 1 ? ent / std::log(double(n)) : 1.0;
  return b;
}

RoutingStats::RoutingStats(int n_experts, std::vector<int> moe_layers)
    : n_experts_(n_experts), layers_(std::move(moe_layers)),
      load_(layers_.size(), std::vector<int64_t>(size_t(std::max(0, n_experts)), 0)) {}

RoutingStats RoutingStats::for_trace(const RoutingTrace& trace) {
  return RoutingStats(trace.n_experts(), trace.moe_layers());
}

void RoutingStats::clear() {
  tokens_ = 0;
  for (auto& l : load_) std::fill(l.begin(), l.end(), 0);
}

void RoutingStats::add(const RoutingTrace& trace, size_t first, size_t last) {
  if (trace.n_experts() != n_experts_ || trace.moe_layers() != layers_)
    throw Error("routing statistics: the trace belongs to another model");
  last = std::min(last, trace.size());
  for (size_t t = first; t < last; ++t) {
    for (size_t m = 0; m < layers_.size(); ++m)
      for (int s = 0; s < trace.top_k(); ++s) {
        const int e = trace.expert(t, int(m), s);
        if (e >= 0) ++load_[m][size_t(e)];
      }
    ++tokens_;
  }
}

void RoutingStats::add_token(const int32_t* ids, int k) {
  for (size_t m = 0; m < layers_.size(); ++m)
    for (int s = 0; s < k; ++s) {
      const int32_t e = ids[m * size_t(k) + size_t(s)];
      if (e < 0) continue;
      if (e >= n_experts_)
        throw Error("routing statistics: expert id " + std::to_string(e) + " is not below the " + std::to_string(n_experts_) + " experts");
      ++load_[m][size_t(e)];
    }
  ++tokens_;
}

void RoutingStats::add_counts(const int64_t* load, int64_t tokens) {
  for (size_t m = 0; m < layers_.size(); ++m)
    for (size_t e = 0; e < size_t(n_experts_); ++e) load_[m][e] += load[m * size_t(n_experts_) + e];
  tokens_ += tokens;
}

void RoutingStats::merge(const RoutingStats& other) {
  if (other.n_experts_ != n_experts_ || other.layers_ != layers_)
    throw Error("routing statistics: merging statistics of another model");
  for (size_t m = 0; m < layers_.size(); ++m)
    for (size_t e = 0; e < size_t(n_experts_); ++e) load_[m][e] += other.load_[m][e];
  tokens_ += other.tokens_;
}

LayerBalance RoutingStats::layer(int moe_index) const {
  return balance_of(load_[size_t(moe_index)], tokens_, layers_[size_t(moe_index)]);
}

LayerBalance RoutingStats::mean_over_layers() const {
  LayerBalance out;
  out.layer = -1;
  out.tokens = tokens_;
  const size_t L = layers_.size();
  if (L == 0) return out;
  double dead = 0, distinct = 0;
  for (size_t m = 0; m < L; ++m) {
    const LayerBalance b = layer(int(m));
    out.cv += b.cv / double(L);
    out.maxvio += b.maxvio / double(L);
    out.entropy += b.entropy / double(L);
    dead += b.dead;
    distinct += b.distinct;
  }
  out.dead = int(std::lround(dead / double(L)));
  out.distinct = int(std::lround(distinct / double(L)));
  return out;
}

LayerBalance RoutingStats::worst_over_layers() const {
  LayerBalance out;
  out.layer = -1;
  out.tokens = tokens_;
  for (size_t m = 0; m < layers_.size(); ++m) {
    const LayerBalance b = layer(int(m));
    out.cv = m ? std::max(out.cv, b.cv) : b.cv;
    out.maxvio = m ? std::max(out.maxvio, b.maxvio) : b.maxvio;
    out.entropy = m ? std::min(out.entropy, b.entropy) : b.entropy;
    out.dead = m ? std::max(out.dead, b.dead) : b.dead;
    out.distinct = m ? std::min(out.distinct, b.distinct) : b.distinct;
  }
  return out;
}

std::vector<int64_t> coactivation(const RoutingTrace& trace, int moe_index, size_t first, size_t last) {
  const size_t E = size_t(trace.n_experts());
  std::vector<int64_t> c(E * E, 0);
  last = std::min(last, trace.size());
  std::vector<int> sel;
  for (size_t t = first; t < last; ++t) {
    sel.clear();
    for (int s = 0; s < trace.top_k(); ++s) {
      int e = trace.expert(t, moe_index, s);
      if (e >= 0 && std::find(sel.begin(), sel.end(), e) == sel.end()) sel.push_back(e);
    }
    for (int i : sel)
      for (int j : sel) ++c[size_t(i) * E + size_t(j)];
  }
  return c;
}

std::string balance_csv(const RoutingStats& stats) {
  std::string out = "layer,tokens,cv,maxvio,entropy,dead,distinct\n";
  char buf[160];
  auto row = [&](const LayerBalance& b, const char* name) {
    std::snprintf(buf, sizeof buf, "%s,%lld,%.6f,%.6f,%.6f,%d,%d\n", name, (long long)b.tokens, b.cv, b.maxvio,
                  b.entropy, b.dead, b.distinct);
    out += buf;
  };
  for (size_t m = 0; m < stats.moe_layers().size(); ++m)
    row(stats.layer(int(m)), std::to_string(stats.moe_layers()[m]).c_str());
  row(stats.mean_over_layers(), "mean");
  row(stats.worst_over_layers(), "worst");
  return out;
}

}  // namespace moescope
