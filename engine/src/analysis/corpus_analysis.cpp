#include "moescope/corpus_analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "moescope/error.h"
#include "moescope/routing_stats.h"

namespace moescope {

namespace fs = std::filesystem;

std::vector<Domain> read_corpus(const fs::path& path) {
  auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error("cannot read " + p.string());
    return Domain{p.stem().string(), std::string(std::istreambuf_iterator<char>(in), {})};
  };
  std::vector<Domain> out;
  if (fs::is_regular_file(path)) {
    out.push_back(read(path));
  } else if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.push_back(read(f));
  } else {
    throw Error("corpus " + path.string() + " is neither a file nor a folder");
  }
  if (out.empty()) throw Error("corpus " + path.string() + " holds no files");
  return out;
}

namespace {

// Normalised mutual information between two categorical variables given their joint counts.
double nmi(const std::map<std::pair<int, int>, int64_t>& joint, int64_t n) {
  if (n == 0) return 0.0;
  std::map<int, int64_t> a, b;
  for (const auto& [k, c] : joint) a[k.first] += c, b[k.second] += c;
  auto entropy = [n](const std::map<int, int64_t>& m) {
    double h = 0.0;
    for (const auto& [k, c] : m) h -= double(c) / double(n) * std::log(double(c) / double(n));
    return h;
  };
  double mi = 0.0;
  for (const auto& [k, c] : joint) {
    const double pxy = double(c) / double(n);
    mi += pxy * std::log(pxy / (double(a[k.first]) / double(n) * double(b[k.second]) / double(n)));
  }
  const double ha = entropy(a), hb = entropy(b);
  return ha > 0 && hb > 0 ? mi / std::sqrt(ha * hb) : 0.0;
}

}  // namespace

CorpusAnalysis analyze_corpus(Session& session, const Tokenizer& tokenizer, const std::vector<Domain>& domains,
                              const AnalysisOptions& opt) {
  const ModelSpec& spec = session.spec();
  if (spec.n_moe_layers() == 0) throw Error("the model has no MoE layers to analyse");
  CorpusAnalysis a;
  a.moe_layers = spec.moe_layer_indices();
  a.n_experts = spec.moe.router.n_experts;
  const size_t nm = a.moe_layers.size(), E = size_t(a.n_experts);
  const int window = std::clamp(opt.window, 1, session.backend().context_length());

  std::vector<std::vector<int32_t>> ids;
  size_t total = 0;
  for (const auto& d : domains) {
    ids.push_back(tokenizer.encode(d.text));
    total += ids.back().size();
  }
  size_t done = 0;
  for (size_t di = 0; di < domains.size(); ++di) {
    DomainRouting dr;
    dr.name = domains[di].name;
    dr.load.assign(nm, std::vector<int64_t>(E, 0));
    dr.top1.assign(nm, std::vector<int64_t>(E, 0));
    std::vector<std::map<std::pair<int, int>, int64_t>> pairs(nm > 0 ? nm - 1 : 0);
    const auto& toks = ids[di];
    for (size_t start = 0; start < toks.size(); start += size_t(window)) {
      if (opt.cancel && opt.cancel->load()) throw Error("analysis cancelled");
      const size_t n = std::min(size_t(window), toks.size() - start);
      session.reset();  // each window starts from an empty cache
      session.prefill(std::span<const int32_t>(toks.data() + start, n), false);
      const RoutingTrace& tr = session.trace();
      for (size_t t = 0; t < tr.size(); ++t) {
        const int32_t id = tr.token(t).id;
        auto& per_layer = a.token_top1[id];
        if (per_layer.empty()) per_layer.resize(nm);
        ++a.token_count[id];
        for (size_t m = 0; m < nm; ++m) {
          for (int s = 0; s < tr.top_k(); ++s) {
            const int e = tr.expert(t, int(m), s);
            if (e >= 0) ++dr.load[m][size_t(e)];
          }
          const int top = tr.expert(t, int(m), 0);
          if (top >= 0) {
            ++dr.top1[m][size_t(top)];
            ++per_layer[m][top];
          }
          if (m + 1 < nm) ++pairs[m][{top, tr.expert(t, int(m + 1), 0)}];
        }
        ++dr.tokens;
      }
      done += n;
      if (opt.progress) opt.progress(done, total);
    }
    for (size_t m = 0; m + 1 < nm; ++m) dr.consistency.push_back(nmi(pairs[m], dr.tokens));
    a.domains.push_back(std::move(dr));
  }
  session.reset();
  return a;
}

double CorpusAnalysis::js_divergence(size_t da, size_t db, int m) const {
  const auto& la = domains[da].load[size_t(m)];
  const auto& lb = domains[db].load[size_t(m)];
  double sa = 0, sb = 0;
  for (size_t e = 0; e < la.size(); ++e) sa += double(la[e]), sb += double(lb[e]);
  if (sa == 0 || sb == 0) return 0.0;
  double js = 0.0;
  for (size_t e = 0; e < la.size(); ++e) {
    const double p = double(la[e]) / sa, q = double(lb[e]) / sb, mix = 0.5 * (p + q);
    if (p > 0) js += 0.5 * p * std::log(p / mix);
    if (q > 0) js += 0.5 * q * std::log(q / mix);
  }
  return js;
}

void CorpusAnalysis::write(const fs::path& dir, const Tokenizer& tokenizer) const {
  fs::create_directories(dir);
  auto open = [&](const char* name) {
    std::ofstream f(dir / name, std::ios::binary);
    if (!f) throw Error("cannot write " + (dir / name).string());
    return f;
  };
  auto csv_text = [](std::string s) {  // quote for CSV
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  const size_t nm = moe_layers.size();
  {
    auto f = open("load.csv");
    f << "domain,layer,expert,count,fraction\n";
    for (const auto& d : domains)
      for (size_t m = 0; m < nm; ++m) {
        int64_t sum = 0;
        for (int64_t c : d.load[m]) sum += c;
        for (size_t e = 0; e < d.load[m].size(); ++e)
          f << d.name << ',' << moe_layers[m] << ',' << e << ',' << d.load[m][e] << ','
            << (sum ? double(d.load[m][e]) / double(sum) : 0.0) << '\n';
      }
  }
  {
    auto f = open("balance.csv");
    f << "domain,layer,tokens,cv,maxvio,entropy,dead,distinct\n";
    for (const auto& d : domains)
      for (size_t m = 0; m < nm; ++m) {
        LayerBalance b = balance_of(d.load[m], d.tokens, moe_layers[m]);
        f << d.name << ',' << b.layer << ',' << b.tokens << ',' << b.cv << ',' << b.maxvio << ',' << b.entropy << ','
          << b.dead << ',' << b.distinct << '\n';
      }
  }
  {  // For each expert, the tokens it is the top choice for most often.
    auto f = open("specialisation.csv");
    f << "layer,expert,rank,token_id,token,count,share_of_token\n";
    for (size_t m = 0; m < nm; ++m) {
      std::vector<std::vector<std::pair<int64_t, int32_t>>> per_expert(static_cast<size_t>(n_experts));
      for (const auto& [id, layers] : token_top1)
        for (const auto& [e, c] : layers[m]) per_expert[size_t(e)].push_back({c, id});
      for (size_t e = 0; e < per_expert.size(); ++e) {
        auto& v = per_expert[e];
        std::sort(v.begin(), v.end(), [](auto& x, auto& y) { return x.first != y.first ? x.first > y.first : x.second < y.second; });
        for (size_t r = 0; r < std::min<size_t>(10, v.size()); ++r) {
          const int32_t id = v[r].second;
          f << moe_layers[m] << ',' << e << ',' << r + 1 << ',' << id << ','
            << csv_text(tokenizer.decode(std::span<const int32_t>(&id, 1))) << ',' << v[r].first << ','
            << double(v[r].first) / double(token_count.at(id)) << '\n';
        }
      }
    }
  }
  {  // How concentrated each token's top-1 routing is (entropy averaged over layers; 0 = always the same expert).
    auto f = open("tokens.csv");
    f << "token_id,token,count,mean_top1_entropy\n";
    for (const auto& [id, layers] : token_top1) {
      const int64_t n = token_count.at(id);
      double h = 0.0;
      for (const auto& counts : layers)
        for (const auto& [e, c] : counts) h -= double(c) / double(n) * std::log(double(c) / double(n));
      f << id << ',' << csv_text(tokenizer.decode(std::span<const int32_t>(&id, 1))) << ',' << n << ','
        << h / double(std::max<size_t>(1, layers.size())) << '\n';
    }
  }
  {
    auto f = open("consistency.csv");
    f << "domain,layer_from,layer_to,nmi\n";
    for (const auto& d : domains)
      for (size_t m = 0; m < d.consistency.size(); ++m)
        f << d.name << ',' << moe_layers[m] << ',' << moe_layers[m + 1] << ',' << d.consistency[m] << '\n';
  }
  {
    auto f = open("divergence.csv");
    f << "layer,domain_a,domain_b,js_divergence\n";
    for (size_t m = 0; m < nm; ++m)
      for (size_t a = 0; a < domains.size(); ++a)
        for (size_t b = a + 1; b < domains.size(); ++b)
          f << moe_layers[m] << ',' << domains[a].name << ',' << domains[b].name << ',' << js_divergence(a, b, int(m))
            << '\n';
  }
  nlohmann::json s = {{"moe_layers", moe_layers}, {"n_experts", n_experts}, {"domains", nlohmann::json::array()}};
  for (const auto& d : domains) s["domains"].push_back({{"name", d.name}, {"tokens", d.tokens}});
  auto f = open("summary.json");
  f << s.dump(2) << '\n';
}

}  // namespace moescope
