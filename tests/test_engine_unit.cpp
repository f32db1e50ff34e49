// Unit tests of the engine's small parts against hand-computed values: routing rules and
// interventions, load-balance statistics, the routing trace format, the sampler, presets and the
// session's KV-prefix reuse.
#include <QtTest>
#include <QTemporaryDir>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>

#include "moescope/anatomy.h"
#include "moescope/backend.h"
#include "moescope/compare.h"
#include "moescope/error.h"
#include "moescope/route_explain.h"
#include "moescope/routing.h"
#include "moescope/resources.h"
#include "moescope/routing_stats.h"
#include "moescope/routing_trace.h"
#include "moescope/sampler.h"
#include "moescope/session.h"
#include "moescope/thread_pool.h"

using namespace moescope;

namespace {
std::vector<int32_t> route(const RouterSpec& r, std::vector<float> logits, const float* bias, const RoutingControl& c,
                           std::vector<float>* weights = nullptr) {
  const int k = c.effective_top_k(r);
  std::vector<int32_t> ids(static_cast<size_t>(k));
  std::vector<float> w(static_cast<size_t>(k)), scratch(static_cast<size_t>(3 * r.n_experts + 64));
  route_token(r, logits.data(), bias, c, 0, ids.data(), w.data(), nullptr, scratch.data());
  if (weights) *weights = w;
  return ids;
}
float logit_of(float p) { return std::log(p / (1.0f - p)); }  // sigmoid⁻¹
}  // namespace

class EngineUnitTest : public QObject {
  Q_OBJECT

private slots:
  // parallel_for runs every index exactly once, with thread indices below size(), over many jobs
  // of changing sizes back to back (a late thread must never run a newer job with an older one's
  // parameters), and a thread may take several chunks.
  void thread_pool_covers_every_index_once() {
    for (int threads : {1, 2, 3, 5}) {
      ThreadPool pool(threads);
      std::vector<std::atomic<int>> hits(5000);
      std::atomic<int> bad_thread{0};
      for (int job = 0; job < 3000; ++job) {
        const int n = (job * 7919) % 97 + (job % 5 == 0 ? 4000 : 1);
        for (int i = 0; i < n; ++i) hits[size_t(i)].store(0, std::memory_order_relaxed);
        pool.parallel_for(n, [&](int b, int e, int t) {
          if (t < 0 || t >= pool.size()) bad_thread.fetch_add(1);
          for (int i = b; i < e; ++i) hits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
        });
        int wrong = 0;
        for (int i = 0; i < n; ++i) wrong += hits[size_t(i)].load(std::memory_order_relaxed) != 1;
        if (wrong) QFAIL(qPrintable(QStringLiteral("%1 threads, job %2 (n=%3): %4 indices not run exactly once").arg(threads).arg(job).arg(n).arg(wrong)));
      }
      QCOMPARE(bad_thread.load(), 0);
    }
  }

  void softmax_router_renormalises() {
    RouterSpec r;
    r.n_experts = 4, r.top_k = 2, r.renormalize = true;
    std::vector<float> w;
    auto ids = route(r, {std::log(1.f), std::log(4.f), std::log(2.f), std::log(3.f)}, nullptr, {}, &w);
    QCOMPARE(ids, (std::vector<int32_t>{1, 3}));
    QVERIFY(std::fabs(w[0] - 4.f / 7.f) < 1e-6f && std::fabs(w[1] - 3.f / 7.f) < 1e-6f);
    r.renormalize = false;
    route(r, {std::log(1.f), std::log(4.f), std::log(2.f), std::log(3.f)}, nullptr, {}, &w);
    QVERIFY(std::fabs(w[0] - 0.4f) < 1e-6f);  // raw softmax probability
  }

  // DeepSeek-V3: biased scores choose groups and experts; weights come from unbiased scores.
  // Group 1's biased scores are negative: with 0-masking (some transformers versions) expert 0
  // of a masked group (score 0) would beat them; with -inf masking it never does.
  void deepseek_v3_groups_with_negative_bias() {
    RouterSpec r;
    r.n_experts = 8, r.top_k = 2, r.scoring = ScoreFunc::Sigmoid, r.correction_bias = true;
    r.group_score = GroupScore::SumTop2, r.n_group = 4, r.topk_group = 1, r.renormalize = true, r.scaling = 2.0f;
    std::vector<float> s = {0.5f, 0.5f, 0.6f, 0.7f, 0.1f, 0.1f, 0.1f, 0.1f};
    std::vector<float> logits;
    for (float p : s) logits.push_back(logit_of(p));
    std::vector<float> bias = {0.f, 0.f, -0.9f, -0.9f, 0.f, 0.f, 0.f, 0.f};
    // biased: g0 = 1.0, g1 = -0.3-0.2 = -0.5, g2 = 0.2, g3 = 0.2 -> group 0 wins.
    std::vector<float> w;
    auto ids = route(r, logits, bias.data(), {}, &w);
    QCOMPARE(ids, (std::vector<int32_t>{0, 1}));
    QVERIFY(std::fabs(w[0] - 1.0f) < 1e-5f && std::fabs(w[1] - 1.0f) < 1e-5f);  // 0.5/(1.0) * 2
    // Without the bias, group 1 (0.6 + 0.7) wins.
    RoutingControl nobias;
    nobias.ignore_bias = true;
    ids = route(r, logits, bias.data(), nobias, &w);
    QCOMPARE(ids, (std::vector<int32_t>{3, 2}));
    QVERIFY(std::fabs(w[0] - 2.0f * 0.7f / 1.3f) < 1e-5f);
  }

  // The inspector's explanation of a DeepSeek-V3 choice, rebuilt from the scores: the same
  // experts as the router, the group step, the margin on biased scores inside the kept groups, and
  // "why not the best score": its group was dropped.
  void explain_route_under_groups_and_bias() {
    RouterSpec r;
    r.n_experts = 8, r.top_k = 2, r.scoring = ScoreFunc::Sigmoid, r.correction_bias = true;
    r.group_score = GroupScore::SumTop2, r.n_group = 4, r.topk_group = 2, r.renormalize = true, r.scaling = 2.5f;
    // groups: {0,1} {2,3} {4,5} {6,7}; expert 7 has the best raw score, but group 3 sums lowest.
    std::vector<float> s = {0.55f, 0.50f, 0.40f, 0.45f, 0.30f, 0.20f, 0.05f, 0.90f};
    std::vector<float> bias = {0.f, 0.f, 0.25f, 0.f, 0.f, 0.f, -0.5f, -0.6f};
    // biased: 0.55 0.50 | 0.65 0.45 | 0.30 0.20 | -0.45 0.30 -> groups 1.05, 1.10, 0.50, -0.15
    std::vector<float> logits;
    for (float p : s) logits.push_back(logit_of(p));
    const auto ids = route(r, logits, bias.data(), {});
    const rules::RouterRule rule = make_router_rule(r, {}, 0, true);
    const RouteExplanation x = explain_route(rule, s.data(), bias.data());
    QCOMPARE(x.chosen, (std::vector<int>(ids.begin(), ids.end())));
    QCOMPARE(x.chosen, (std::vector<int>{2, 0}));  // biased 0.65, then 0.55
    QCOMPARE(x.group_score.size(), size_t(4));
    QVERIFY(std::fabs(x.group_score[1] - 1.10f) < 1e-6f && std::fabs(x.group_score[3] + 0.15f) < 1e-6f);
    QCOMPARE(x.kept_groups, uint64_t(0b0011));
    QCOMPARE(x.next, 1);  // biased 0.50 in a kept group; expert 7 (0.30 biased) is in a dropped one
    QVERIFY(std::fabs(x.margin - 0.05f) < 1e-6f);
    QCOMPARE(x.best_unchosen, 7);
    QVERIFY(x.best_unchosen_group_dropped);
    QVERIFY(!x.in_kept_group(7) && x.in_kept_group(3));
    // A top-2 on raw scores would have taken 7 and 0. Without groups or bias the explanation is plain top-k.
    RouterSpec q;
    q.n_experts = 4, q.top_k = 2;
    const std::vector<float> p = {0.1f, 0.4f, 0.2f, 0.3f};
    const RouteExplanation y = explain_route(make_router_rule(q, {}, 0, false), p.data(), nullptr);
    QCOMPARE(y.chosen, (std::vector<int>{1, 3}));
    QVERIFY(y.group_score.empty());
    QCOMPARE(y.next, 2);
    QVERIFY(std::fabs(y.margin - 0.1f) < 1e-6f);
    QVERIFY(!y.best_unchosen_group_dropped);
  }

  void deepseek_v2_group_max_and_scaling() {
    RouterSpec r;
    r.n_experts = 4, r.top_k = 2, r.group_score = GroupScore::Max, r.n_group = 2, r.topk_group = 1;
    r.scaling = 16.0f, r.scale_after_renorm = false;
    // probs 0.1 0.4 | 0.3 0.2: group 0 (max 0.4) wins although group 1 holds more mass.
    std::vector<float> w;
    auto ids = route(r, {std::log(.1f), std::log(.4f), std::log(.3f), std::log(.2f)}, nullptr, {}, &w);
    QCOMPARE(ids, (std::vector<int32_t>{1, 0}));
    QVERIFY(std::fabs(w[0] - 16.f * 0.4f) < 1e-4f);
  }

  void interventions() {
    RouterSpec r;
    r.n_experts = 6, r.top_k = 2;
    std::vector<float> logits = {6, 5, 4, 3, 2, 1};
    RoutingControl c;
    c.disabled.assign(1, std::vector<uint8_t>(6, 0));
    c.disabled[0][0] = 1;
    QCOMPARE(route(r, logits, nullptr, c), (std::vector<int32_t>{1, 2}));
    RoutingControl f;
    f.forced_expert = 5;
    QCOMPARE(route(r, logits, nullptr, f), (std::vector<int32_t>{5, 0}));
    RoutingControl k;
    k.top_k = 4;
    QCOMPARE(route(r, logits, nullptr, k), (std::vector<int32_t>{0, 1, 2, 3}));
    f.forced_layer = 3;  // another layer: no effect here (layer 0)
    QCOMPARE(route(r, logits, nullptr, f), (std::vector<int32_t>{0, 1}));
  }

  // make_router_rule is the one place interventions are resolved: per layer, clamped to the
  // model, the bias only where the layer has one and the user did not ask to ignore it.
  void router_rule_resolves_controls_per_layer() {
    RouterSpec r;
    r.n_experts = 16, r.top_k = 4, r.scoring = ScoreFunc::Sigmoid, r.correction_bias = true;
    r.group_score = GroupScore::SumTop2, r.n_group = 4, r.topk_group = 2, r.renormalize = true, r.scaling = 2.5f;
    RoutingControl c;
    c.forced_expert = 7, c.forced_layer = 2, c.top_k = 40;
    auto at2 = make_router_rule(r, c, 2, true), at3 = make_router_rule(r, c, 3, true);
    QCOMPARE(at2.forced_expert, 7);
    QCOMPARE(at3.forced_expert, -1);
    QCOMPARE(at2.top_k, 16);  // clamped to the experts there are
    QCOMPARE(at2.scoring, int32_t(rules::kSigmoid));
    QCOMPARE(at2.grouping, int32_t(rules::kGroupSumTop2));
    QVERIFY(at2.use_bias);
    QVERIFY(!make_router_rule(r, c, 2, false).use_bias);  // a layer without a bias tensor
    c.ignore_bias = true;
    QVERIFY(!make_router_rule(r, c, 2, true).use_bias);
    c.forced_expert = 16;  // out of range: ignored, not an out-of-bounds write
    QCOMPARE(make_router_rule(r, c, 2, true).forced_expert, -1);
    r.n_group = 1;
    QCOMPARE(make_router_rule(r, c, 2, true).grouping, int32_t(rules::kNoGroups));

    // The disabled mask both backends route with: [layers × experts], empty when nothing is off.
    RoutingControl d;
    QVERIFY(d.disabled_mask(3, 16).empty());
    d.disabled.resize(2);
    d.disabled[1].assign(5, 0);  // shorter than the expert count: the rest stay enabled
    QVERIFY(d.disabled_mask(3, 16).empty());
    d.disabled[1][4] = 1;
    const auto mask = d.disabled_mask(3, 16);
    QCOMPARE(mask.size(), size_t(48));
    QCOMPARE(int(std::count(mask.begin(), mask.end(), uint8_t(1))), 1);
    QCOMPARE(int(mask[16 + 4]), 1);
  }

  // gpt-oss: top-k on the raw logits, weights the softmax over the chosen k (times the scaling);
  // probs report the softmax over all of them.
  void topk_softmax_router() {
    RouterSpec r;
    r.n_experts = 5, r.top_k = 2, r.scoring = ScoreFunc::TopKSoftmax;
    std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.0f, 2.0f};  // a tie: the lower index wins
    std::vector<float> w;
    QCOMPARE(route(r, logits, nullptr, RoutingControl{}, &w), (std::vector<int32_t>{1, 3}));
    const float e = std::exp(-1.0f);
    QVERIFY(std::fabs(w[0] - 1.0f / (1.0f + e)) < 1e-6f);
    QVERIFY(std::fabs(w[1] - e / (1.0f + e)) < 1e-6f);
    RoutingControl off;
    off.disabled.assign(1, std::vector<uint8_t>(5, 0));
    off.disabled[0][1] = off.disabled[0][3] = off.disabled[0][4] = 1;
    off.top_k = 3;  // only two selectable: the third slot is padding with weight 0
    QCOMPARE(route(r, logits, nullptr, off, &w), (std::vector<int32_t>{0, 2, 0}));
    QCOMPARE(w[2], 0.0f);
    QVERIFY(std::fabs(w[0] + w[1] - 1.0f) < 1e-6f);
  }

  void balance_metrics_by_hand() {
    // load [4, 0, 2, 2]: mean 2, population sd √2, p = (½, 0, ¼, ¼), H = 1.5 ln 2 / ln 4 = 0.75
    LayerBalance b = balance_of({4, 0, 2, 2}, 4, 7);
    QVERIFY(std::fabs(b.cv - std::sqrt(2.0) / 2.0) < 1e-12);
    QVERIFY(std::fabs(b.maxvio - 1.0) < 1e-12);
    QVERIFY(std::fabs(b.entropy - 0.75) < 1e-12);
    QCOMPARE(b.dead, 1);
    QCOMPARE(b.distinct, 3);
    LayerBalance even = balance_of({3, 3, 3}, 3, 0);
    QCOMPARE(even.cv, 0.0);
    QCOMPARE(even.maxvio, 0.0);
    QVERIFY(std::fabs(even.entropy - 1.0) < 1e-12);
    LayerBalance empty = balance_of({0, 0}, 0, 0);
    QCOMPARE(empty.dead, 2);
    QCOMPARE(empty.entropy, 0.0);
  }

  void stats_incremental_and_coactivation() {
    RoutingTrace t("m", 4, 2, {1, 3});
    const int32_t a[] = {0, 1, 2, 3}, b[] = {0, 2, 0, 1}, c[] = {1, 0, 3, 2};
    const float w[] = {.5f, .5f, .5f, .5f};
    t.append({0, 10, "a", Phase::Prefill}, a, w, 2);
    t.append({1, 11, "b", Phase::Prefill}, b, w, 2);
    t.append({2, 12, "c", Phase::Decode}, c, w, 2);
    RoutingStats inc = RoutingStats::for_trace(t), all = RoutingStats::for_trace(t);
    inc.add(t, 0, 1);
    inc.add(t, 1, 3);
    all.add_all(t);
    QCOMPARE(inc.load(0), all.load(0));
    QCOMPARE(all.load(0), (std::vector<int64_t>{3, 2, 1, 0}));
    QCOMPARE(all.load(1), (std::vector<int64_t>{1, 1, 2, 2}));
    QCOMPARE(all.tokens(), int64_t(3));
    auto co = coactivation(t, 0, 0, 3);  // layer-1 pairs: {0,1}, {0,2}, {1,0}
    QCOMPARE(co[0 * 4 + 1], int64_t(2));
    QCOMPARE(co[0 * 4 + 0], int64_t(3));
    QCOMPARE(co[2 * 4 + 0], int64_t(1));
    QCOMPARE(co[3 * 4 + 3], int64_t(0));
    const std::string csv = balance_csv(all);
    QVERIFY(csv.rfind("layer,tokens,cv,maxvio,entropy,dead,distinct\n1,3,", 0) == 0);
    QVERIFY(csv.find("\nmean,3,") != std::string::npos);
    QVERIFY(csv.find("\nworst,3,") != std::string::npos);
  }

  void trace_json_round_trip() {
    RoutingTrace t("tiny", 16, 3, {1, 2});
    const int32_t ids[] = {3, 17 % 16, 9, 2, 5, 1};
    const float w[] = {0.5f, 0.25f, 0.125f, 1.5f, 0.75f, 0.375f};
    t.append({0, 42, "Hé", Phase::Prefill}, ids, w, 3);
    t.append({1, 43, "llo", Phase::Decode}, ids, w, 3);
    auto j = t.to_json();
    QCOMPARE(j["version"].get<int>(), 1);
    QCOMPARE(j["tokens"][1]["phase"].get<std::string>(), std::string("decode"));
    QCOMPARE(j["tokens"][0]["routes"][1]["layer"].get<int>(), 2);
    RoutingTrace back = RoutingTrace::from_json(j);
    QCOMPARE(back.size(), size_t(2));
    QCOMPARE(back.token(0).text, std::string("Hé"));
    QCOMPARE(back.expert(1, 1, 2), 1);
    QCOMPARE(back.weight(0, 1, 0), 1.5f);
    QVERIFY(back.bytes() < 64);  // 2 tokens x 2 layers x 3 slots x (2+2) bytes
  }

  void trace_json_errors_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("needle");
    QTest::newRow("version") << R"({"version": 2})" << "version";
    QTest::newRow("top_k") << R"({"version":1,"n_experts":4,"top_k":9,"moe_layers":[],"tokens":[]})" << "'top_k' out of range";
    QTest::newRow("expert") << R"({"version":1,"n_experts":4,"top_k":1,"moe_layers":[0],"tokens":[{"routes":[{"layer":0,"experts":[7],"weights":[1]}]}]})"
                            << "out of range";
    QTest::newRow("routes") << R"({"version":1,"n_experts":4,"top_k":1,"moe_layers":[0,1],"tokens":[{"routes":[]}]})"
                            << "one entry per MoE layer";
  }
  void trace_json_errors() {
    QFETCH(QString, json);
    QFETCH(QString, needle);
    try {
      RoutingTrace::from_json(nlohmann::json::parse(json.toStdString()));
      QFAIL("accepted a bad trace");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains(needle), e.what());
    }
  }

  void sampler_rules() {
    std::vector<float> base = {1.0f, 3.0f, 2.0f, 2.9f};
    auto run = [&](SamplingParams p, std::vector<int32_t> hist = {}) {
      std::vector<float> l = base;
      Sampler s(p, 4);
      return s.sample(l.data(), hist);
    };
    QCOMPARE(run({}), 1);  // greedy
    SamplingParams pen;
    pen.repetition_penalty = 2.0f;  // 3.0 -> 1.5 for a repeated token
    QCOMPARE(run(pen, {1}), 3);
    SamplingParams k1;
    k1.temperature = 5.0f, k1.top_k = 1, k1.seed = 9;
    for (int i = 0; i < 20; ++i) QCOMPARE(run(k1), 1);
    SamplingParams p1;
    p1.temperature = 1.0f, p1.top_p = 0.01f;
    QCOMPARE(run(p1), 1);
    SamplingParams mp;
    mp.temperature = 1.0f, mp.min_p = 0.95f;  // only tokens within 95% of the top probability
    for (uint64_t seed = 0; seed < 20; ++seed) {
      mp.seed = seed;
      const int t = run(mp);
      QVERIFY(t == 1 || t == 3);  // exp(2.9-3) = 0.905 < 0.95 -> only 1
      QCOMPARE(t, 1);
    }
    SamplingParams hot;
    hot.temperature = 1.0f, hot.seed = 1234;
    const int a = run(hot), b = run(hot);
    QCOMPARE(a, b);  // same seed, same draw
    std::vector<int> seen(4, 0);
    for (uint64_t seed = 0; seed < 200; ++seed) {
      hot.seed = seed;
      ++seen[size_t(run(hot))];
    }
    QVERIFY(seen[0] > 0 && seen[1] > seen[0]);  // every token possible, likelier ones more often
  }

  // The sampler sorts only the prefix of candidates its walks reach; it must draw what a sampler
  // that sorts the whole vocabulary draws (written out plainly here, transformers' order).
  void sampler_matches_full_sort() {
    const int V = 50304;
    std::mt19937 gen(5);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    auto reference = [&](const SamplingParams& p, std::vector<float> l) {
      std::mt19937_64 rng(p.seed);
      std::vector<int32_t> order(static_cast<size_t>(V));
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
      int n = p.top_k > 0 ? std::min(p.top_k, V) : V;
      std::vector<double> pr(static_cast<size_t>(n));
      double sum = 0;
      for (int i = 0; i < n; ++i) sum += pr[size_t(i)] = std::exp(double(l[size_t(order[size_t(i)])] - l[size_t(order[0])]) / p.temperature);
      for (auto& x : pr) x /= sum;
      if (p.top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; ++i)
          if ((cum += pr[size_t(i)]) >= p.top_p) { n = i + 1; break; }
      }
      if (p.min_p > 0.0f) {
        int keep = 1;
        while (keep < n && pr[size_t(keep)] >= p.min_p * pr[0]) ++keep;
        n = keep;
      }
      double mass = 0;
      for (int i = 0; i < n; ++i) mass += pr[size_t(i)];
      double r = std::uniform_real_distribution<double>(0.0, mass)(rng);
      for (int i = 0; i < n; ++i)
        if ((r -= pr[size_t(i)]) <= 0) return order[size_t(i)];
      return order[size_t(n - 1)];
    };
    int draws = 0, differ = 0;
    for (float t : {0.3f, 1.0f, 4.0f})       // 4.0: nearly flat, the walks sort far
      for (int k : {0, 40})
        for (float top_p : {1.0f, 0.9f})
          for (float min_p : {0.0f, 0.05f})
            for (uint64_t seed = 0; seed < 4; ++seed) {
              std::vector<float> l(static_cast<size_t>(V));
              for (auto& x : l) x = normal(gen);
              SamplingParams p;
              p.temperature = t, p.top_k = k, p.top_p = top_p, p.min_p = min_p, p.seed = seed;
              Sampler s(p, V);
              std::vector<float> mine = l;
              const int32_t got = s.sample(mine.data(), {});
              ++draws;
              // A different token is only acceptable on a rounding boundary: both must be candidates
              // with nearly the same cumulative position, which never happens with these seeds.
              if (got != reference(p, l)) ++differ;
            }
    QCOMPARE(differ, 0);
    QCOMPARE(draws, 3 * 2 * 2 * 2 * 4);
  }

  void presets_parse() {
    for (const char* p : {"deepseek-r1", "deepseek-v2-lite", "qwen3-30b-a3b", "olmoe-1b-7b", "mixtral-8x7b",
                          "gpt-oss-20b", "gpt-oss-120b", "qwen3.5-35b-a3b", "glm-4.5-air", "glm-4.7-flash"}) {
      ModelSpec s = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/" + p + ".json");
      QVERIFY(s.n_moe_layers() > 0);
    }
  }

  // Published totals / active parameters (resources/presets/README.md): the total must round to the
  // published figure; makers differ on counting the input embedding as active, so the published
  // active figure must match one of our two figures (with / without the embedding) within 5%.
  // Two makers count otherwise, said per row (`convention`):
  //   "non-embedding": both figures leave out the input embedding and the output head;
  //   "class": the figures are a size-class name (NNB-AnB): the total rounds to NN and the
  //            active parameters without the embedding lie in [n, n + 1).
  void parameter_counts_match_published_data() {
    QTest::addColumn<QString>("preset");
    QTest::addColumn<double>("total");
    QTest::addColumn<double>("active");
    QTest::addColumn<double>("unit");  // the published total's last digit, when coarser than 0.5 %
    QTest::addColumn<QString>("convention");
    QTest::newRow("deepseek-r1") << "deepseek-r1" << 671.0 << 37.0 << 0.0 << "";
    QTest::newRow("deepseek-v2-lite") << "deepseek-v2-lite" << 15.7 << 2.4 << 0.0 << "";
    QTest::newRow("qwen3-30b-a3b") << "qwen3-30b-a3b" << 30.5 << 3.3 << 0.0 << "";
    QTest::newRow("olmoe-1b-7b") << "olmoe-1b-7b" << 6.9 << 1.3 << 0.0 << "";
    QTest::newRow("mixtral-8x7b") << "mixtral-8x7b" << 46.7 << 12.9 << 0.0 << "";
    // OpenAI's gpt-oss model card: 20.91B / 3.61B and 116.83B / 5.13B (active without the input embedding)
    QTest::newRow("gpt-oss-20b") << "gpt-oss-20b" << 20.91 << 3.61 << 0.0 << "";
    QTest::newRow("gpt-oss-120b") << "gpt-oss-120b" << 116.83 << 5.13 << 0.0 << "";
    // Qwen's model card: "Language Model, Number of Parameters: 35B in total and 3B activated"
    // (whole billions; the text model without the vision tower and the MTP layer).
    QTest::newRow("qwen3.5-35b-a3b") << "qwen3.5-35b-a3b" << 35.0 << 3.0 << 1.0 << "";
    // Z.ai's model card and GLM-4.5 report: "106 billion total parameters and 12 billion active
    // parameters" — the transformers model (no MTP layer) without embedding and head: 105.59B /
    // 12.18B. With them (moescope's total) it is 106.83B, which does not round to 106.
    QTest::newRow("glm-4.5-air") << "glm-4.5-air" << 106.0 << 12.0 << 1.0 << "non-embedding";
    // Z.ai's model card: "GLM-4.7-Flash is a 30B-A3B MoE model" (29.95B; 3.58B active without the embedding).
    QTest::newRow("glm-4.7-flash") << "glm-4.7-flash" << 30.0 << 3.0 << 1.0 << "class";
  }
  void parameter_counts_match_published() {
    QFETCH(QString, preset);
    QFETCH(double, total);
    QFETCH(double, active);
    QFETCH(double, unit);
    QFETCH(QString, convention);
    ModelSpec s = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/" + preset.toStdString() + ".json");
    ParamCounts c = count_params(s);
    const double t = double(c.total) / 1e9, a = double(c.active) / 1e9, a0 = double(c.active_without_embedding) / 1e9;
    const double emb = double(c.embedding + c.lm_head) / 1e9;
    qInfo("%s: total %.2fB (published %.1fB), active %.2fB / %.2fB without embedding / %.2fB without embedding and "
          "head (published %.1fB)",
          qPrintable(preset), t, total, a, a0, a - emb, active);
    if (convention == "non-embedding") {
      QVERIFY(std::fabs(t - emb - total) / total < 0.005 || std::fabs(t - emb - total) <= unit / 2);
      QVERIFY(std::fabs(a - emb - active) / active < 0.05);
      return;
    }
    QVERIFY(std::fabs(t - total) / total < 0.005 || std::fabs(t - total) <= unit / 2);
    if (convention == "class") {
      QVERIFY(a0 >= active && a0 < active + 1.0);
      return;
    }
    QVERIFY(convention.isEmpty());
    // The published active figure matches one of the two conventions within rounding.
    QVERIFY(std::min(std::fabs(a - active), std::fabs(a0 - active)) / active < 0.05);
  }

  // GLM-4.5's Glm4MoeConfig defaults first_k_dense_replace to 1 (DeepSeek's to 0) and
  // partial_rotary_factor to 0.5, and its decoder never reads moe_layer_freq: without the keys,
  // layer 0 is dense and half of each head rotates.
  void glm4_moe_dense_layers() {
    nlohmann::json c = {{"architectures", nlohmann::json::array({"Glm4MoeForCausalLM"})},
                        {"vocab_size", 64},
                        {"hidden_size", 32},
                        {"intermediate_size", 48},
                        {"moe_intermediate_size", 16},
                        {"num_hidden_layers", 4},
                        {"num_attention_heads", 4},
                        {"num_key_value_heads", 2},
                        {"head_dim", 8},
                        {"n_routed_experts", 8},
                        {"num_experts_per_tok", 2},
                        {"n_shared_experts", 1}};
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{false, true, true, true}));
    QCOMPARE(spec_from_config(c).rope.dim, 4);  // and partial_rotary_factor to 0.5
    c["first_k_dense_replace"] = 0;
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{true, true, true, true}));
    c["first_k_dense_replace"] = 2;
    c["moe_layer_freq"] = 2;  // DeepSeek's key; Glm4MoeDecoderLayer ignores it
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{false, false, true, true}));
    // DeepSeek-V3 keeps its own default (0) and reads moe_layer_freq.
    nlohmann::json d = c;
    d["architectures"] = nlohmann::json::array({"DeepseekV3ForCausalLM"});
    d.erase("first_k_dense_replace");
    d.erase("head_dim");
    d.update({{"kv_lora_rank", 8}, {"qk_nope_head_dim", 8}, {"qk_rope_head_dim", 4}, {"v_head_dim", 8}});
    QCOMPARE(spec_from_config(d).moe_layer, (std::vector<bool>{true, false, true, false}));
  }

  // GLM-4.7-Flash (Glm4MoeLiteForCausalLM): `mlp_layer_types` says which layers are MoE; a config
  // without it (GLM-4.7-Flash's published config.json has only first_k_dense_replace: 1) takes
  // first_k_dense_replace and moe_layer_freq as DeepSeek's layout does (vLLM builds the model on its
  // DeepSeek-V2 code, which reads them), and with neither key layer 0 is dense (Glm4MoeLiteConfig).
  void glm4_moe_lite_dense_layers() {
    std::ifstream f(std::string(MOESCOPE_SOURCE_DIR) + "/tests/data/models/glm4-moe-lite/config.json");
    nlohmann::json c = nlohmann::json::parse(f);
    QCOMPARE(c["num_hidden_layers"].get<int>(), 3);
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{true, false, true}));  // sparse, dense, sparse
    c["first_k_dense_replace"] = 2;  // mlp_layer_types wins when both are there
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{true, false, true}));
    c.erase("mlp_layer_types");
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{false, false, true}));
    QCOMPARE(spec_from_config(c).moe_layer_indices(), (std::vector<int>{2}));
    c["first_k_dense_replace"] = 0;
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{true, true, true}));
    c["first_k_dense_replace"] = 1;
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{false, true, true}));
    c["moe_layer_freq"] = 2;
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{false, false, true}));
    c.erase("moe_layer_freq");
    c.erase("first_k_dense_replace");
    QCOMPARE(spec_from_config(c).moe_layer, (std::vector<bool>{false, true, true}));  // Glm4MoeLiteConfig's default
    // The shipped preset (config without mlp_layer_types): 47 layers, layer 0 dense.
    const ModelSpec flash = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/glm-4.7-flash.json");
    QCOMPARE(flash.n_layers, 47);
    QCOMPARE(flash.n_moe_layers(), 46);
    QVERIFY(!flash.moe_layer[0] && flash.moe_layer[1] && flash.moe_layer[46]);
  }

  // GLM-4.5-Air as published: 46 layers, layer 0 dense, GQA 96/8 heads of 128 with rotary on the
  // first half, q/k/v biases, sigmoid router with correction bias over 128 experts (top 8) and one
  // shared expert; GLM-4.7-Flash: 47 MLA layers, layer 0 dense, 64 experts (top 4) scaled by 1.8.
  void glm_preset_specs() {
    ModelSpec air = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/glm-4.5-air.json");
    QCOMPARE(air.n_layers, 46);
    QCOMPARE(air.n_moe_layers(), 45);
    QVERIFY(!air.moe_layer[0]);
    QCOMPARE(air.attn.kind, AttentionKind::GQA);
    QCOMPARE(air.attn.n_heads, 96);
    QCOMPARE(air.attn.n_kv_heads, 8);
    QCOMPARE(air.attn.head_dim, 128);
    QCOMPARE(air.rope.dim, 64);
    QVERIFY(air.attn.qkv_bias);
    QCOMPARE(air.attn.qk_norm, QKNorm::None);
    QCOMPARE(air.moe.router.n_experts, 128);
    QCOMPARE(air.moe.router.top_k, 8);
    QCOMPARE(air.moe.router.scoring, ScoreFunc::Sigmoid);
    QVERIFY(air.moe.router.correction_bias);
    QCOMPARE(air.moe.shared, SharedExperts::Plain);
    QCOMPARE(air.moe.shared_width, 1408);
    QCOMPARE(air.dense_width, 10944);
    QCOMPARE(air.eos_ids, (std::vector<int>{151329, 151336, 151338}));
    ModelSpec flash = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/glm-4.7-flash.json");
    QCOMPARE(flash.n_layers, 47);
    QCOMPARE(flash.n_moe_layers(), 46);
    QVERIFY(!flash.moe_layer[0]);
    QCOMPARE(flash.attn.kind, AttentionKind::MLA);
    QCOMPARE(flash.attn.q_lora_rank, 768);
    QCOMPARE(flash.attn.kv_lora_rank, 512);
    QCOMPARE(flash.moe.router.n_experts, 64);
    QCOMPARE(flash.moe.router.top_k, 4);
    QCOMPARE(flash.moe.router.scaling, 1.8f);
    QVERIFY(flash.moe.router.correction_bias);
  }

  // Qwen3.5-35B-A3B as published (Qwen3_5MoeForConditionalGeneration, text_config): 30 Gated
  // DeltaNet and 10 gated attention layers (every fourth), rotary on 64 of 256 dims, (1 + w)
  // norms, the language model's tensors under model.language_model.
  void qwen3_5_preset_spec() {
    ModelSpec s = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/qwen3.5-35b-a3b.json");
    QCOMPARE(s.n_layers, 40);
    QCOMPARE(s.n_linear_layers(), 30);
    QCOMPARE(s.n_attention_layers(), 10);
    for (int l = 0; l < 40; ++l) QCOMPARE(s.is_linear(l), l % 4 != 3);
    QCOMPARE(s.rope.dim, 64);
    QCOMPARE(s.rope.theta, 1e7f);
    QVERIFY(s.attn.output_gate);
    QCOMPARE(s.norm_weight_offset, 1.0f);
    QCOMPARE(s.naming, TensorNaming::LanguageModel);
    QCOMPARE(s.linear.conv_dim(), 8192);
    QCOMPARE(s.linear.state_values(), int64_t(32) * 128 * 128 + 8192 * 3);
    QCOMPARE(s.moe.shared, SharedExperts::SigmoidGated);
    QVERIFY(s.moe.router.renormalize);
    QCOMPARE(s.eos_ids, std::vector<int>{248044});
  }

  // One model per checkpoint while it is held; a changed checkpoint or a released model loads anew.
  void shared_models() {
    namespace fs = std::filesystem;
    QTemporaryDir tmp;
    const fs::path dir = fs::path(tmp.path().toStdString()) / "m";
    fs::copy(std::string(MOESCOPE_TEST_DATA) + "/models/olmoe", dir, fs::copy_options::recursive);
    auto a = load_model_shared(dir);
    auto b = load_model_shared(dir / ".");  // the same directory, spelt otherwise
    QCOMPARE(a.get(), b.get());
    QVERIFY(load_model(dir).get() != a.get());  // plain load_model always loads
    // Rewritten config.json (newer time stamp): a new model.
    fs::last_write_time(dir / "config.json", fs::last_write_time(dir / "config.json") + std::chrono::seconds(5));
    auto c = load_model_shared(dir);
    QVERIFY(c.get() != a.get());
    c.reset();
    auto d = load_model_shared(dir);  // nobody held it: loaded again
    QVERIFY(d.get() != nullptr);
  }

  // A second generate() on a longer prompt reuses the cached prefix and gives the same result as
  // a fresh session.
  void session_reuses_prefix() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3");
    Session a(model, make_backend(model, {"cpu", 128, 2})), b(model, make_backend(model, {"cpu", 128, 2}));
    GenerateParams p;
    p.max_tokens = 6;
    p.stop_at_eos = false;
    std::vector<int32_t> prompt = {1, 142, 110, 10, 226};
    GenerateResult r1 = a.generate(prompt, p);
    prompt.insert(prompt.end(), r1.generated.begin(), r1.generated.end());
    prompt.push_back(88);
    GenerateResult r2 = a.generate(prompt, p);
    QCOMPARE(r2.reused_tokens, 5 + 5);  // prompt + the generated tokens that were fed back
    GenerateResult fresh = b.generate(prompt, p);
    QCOMPARE(r2.generated, fresh.generated);
    QCOMPARE(a.trace().size(), b.trace().size());
    for (size_t i = 0; i < a.trace().size(); ++i) QCOMPARE(a.trace().expert(i, 1, 0), b.trace().expert(i, 1, 0));
    // Context overflow is a clear error, not a crash.
    std::vector<int32_t> longp(200, 5);
    QVERIFY_THROWS_EXCEPTION(Error, a.generate(longp, p));
  }

  // A gated shared expert's gate (Qwen2-MoE) is recorded per token and MoE layer: in (0, 1), varying
  // with the token, the same whether a token was decoded one at a time or read in one prefill, and
  // kept by the JSON form; a plain shared expert (DeepSeek-V3) records none.
  void shared_expert_gates_in_the_trace() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/qwen2-moe");
    QVERIFY(model->spec.moe.shared == SharedExperts::SigmoidGated);
    Session a(model, make_backend(model, {"cpu", 128, 2})), b(model, make_backend(model, {"cpu", 128, 2}));
    GenerateParams p;
    p.max_tokens = 5;
    p.stop_at_eos = false;
    std::vector<int32_t> prompt = {1, 17, 42, 9};
    const GenerateResult r = a.generate(prompt, p);
    const RoutingTrace& ta = a.trace();
    QVERIFY(ta.has_shared_gates());
    std::set<float> seen;
    for (size_t i = 0; i < ta.size(); ++i)
      for (int m = 0; m < ta.n_moe_layers(); ++m) {
        const float g = ta.shared_gate(i, m);
        QVERIFY2(g > 0.0f && g < 1.0f, qPrintable(QString::number(g)));
        seen.insert(g);
      }
    QVERIFY(seen.size() > 3);
    // The same tokens in one prefill: the same gates (decode rows land where prefill rows do).
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), r.generated.begin(), r.generated.end() - 1);  // the last one is never fed
    b.prefill(all, false);
    const RoutingTrace& tb = b.trace();
    QCOMPARE(tb.size(), ta.size());
    for (size_t i = 0; i < ta.size(); ++i)
      for (int m = 0; m < ta.n_moe_layers(); ++m) QVERIFY(std::abs(ta.shared_gate(i, m) - tb.shared_gate(i, m)) < 2e-3f);
    const RoutingTrace back = RoutingTrace::from_json(ta.to_json());
    QCOMPARE(back, ta);
    RoutingTrace cut = ta.slice(2, ta.size());
    QVERIFY(cut.has_shared_gates());
    QCOMPARE(cut.shared_gate(0, 0), ta.shared_gate(2, 0));

    auto plain = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3");
    Session c(plain, make_backend(plain, {"cpu", 128, 2}));
    c.generate(prompt, p);
    QVERIFY(!c.trace().has_shared_gates());
    QCOMPARE(c.trace().shared_gate(0, 0), -1.0f);
  }

  void cancellation_stops_within_one_token() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/mixtral");
    Session s(model, make_backend(model, {"cpu", 128, 1}));
    struct Stopper : GenerationObserver {
      std::atomic<bool>* flag;
      int seen = 0;
      void on_token(int32_t, double) override {
        if (++seen == 3) flag->store(true);
      }
    } obs;
    std::atomic<bool> cancel{false};
    obs.flag = &cancel;
    GenerateParams p;
    p.max_tokens = 50;
    p.stop_at_eos = false;
    GenerateResult r = s.generate(std::vector<int32_t>{1, 2, 3}, p, &obs, &cancel);
    QCOMPARE(r.reason, StopReason::Cancelled);
    QCOMPARE(int(r.generated.size()), 3);
  }

  // Interventions inside a real generation: disabled experts never appear, top-k is honoured.
  void interventions_in_session() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3");
    Session s(model, make_backend(model, {"cpu", 128, 1}));
    GenerateParams p;
    p.max_tokens = 8;
    p.stop_at_eos = false;
    p.control.disabled.assign(size_t(model->spec.n_layers), std::vector<uint8_t>(16, 0));
    for (int e : {0, 3, 8, 9}) p.control.disabled[1][size_t(e)] = 1;  // model layer 1 = MoE index 0
    p.control.top_k = 2;
    s.generate(std::vector<int32_t>{1, 142, 110, 10, 226, 88}, p);
    const RoutingTrace& t = s.trace();
    QVERIFY(t.size() > 6);
    for (size_t i = 0; i < t.size(); ++i) {
      for (int k = 0; k < 2; ++k) {
        const int e = t.expert(i, 0, k);
        QVERIFY(e >= 0 && e != 0 && e != 3 && e != 8 && e != 9);
      }
      QCOMPARE(t.expert(i, 0, 2), -1);  // only two experts per token
      QCOMPARE(t.expert(i, 1, 2), -1);
    }
  }

  // One KV definition: the running cache's figure (per layer, in its element type, times its
  // layers) is the anatomy's (inspect, Model anatomy) once brought to BF16, for MLA and GQA models.
  void kv_figure_matches_the_running_cache() {
    for (const char* name : {"deepseek-v3", "qwen3-moe", "qwen3.5-moe"}) {
      auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/" + name);
      auto backend = make_backend(model, {"cpu", 64, 1});
      const KvStats kv = backend->kv_stats();
      const KvFigure f = kv_figure(model->spec);
      const int elem = kv.element_type == "F32" ? 4 : 2;
      QVERIFY2(kv.n_layers == f.layers, name);
      QCOMPARE(kv.bytes_per_token_layer * kv.n_layers * 2 / elem, f.bytes_per_token);
      QCOMPARE(kv.mha_bytes_per_token_layer * kv.n_layers * 2 / elem, f.mha_bytes_per_token);
      QCOMPARE(kv.state_bytes, f.state_bytes);
      QCOMPARE(default_memory_context(model->spec), int64_t(model->spec.max_position));
    }
    const KvFigure r1 = kv_figure(load_model_spec(preset_path("deepseek-r1")));
    QCOMPARE(r1.bytes_per_token, int64_t(576 * 2 * 61));
    QCOMPARE(QString::fromStdString(kv_figure_text(r1, "MLA")),
             QStringLiteral("68.6 KiB per token in BF16 for all 61 attention layers (1.12 KiB per layer); MLA: 71.1× "
                            "smaller than multi-head attention (4.77 MiB)"));
  }

  void compare_runs_reports_divergence() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3");
    Session s(model, make_backend(model, {"cpu", 128, 1}));
    GenerateParams p;
    p.max_tokens = 8;
    p.stop_at_eos = false;
    const std::vector<int32_t> prompt = {1, 142, 110, 10, 226, 88, 28, 108};
    // Disable token 0's favourite expert in the first MoE layer: routing must diverge there.
    ForwardResult r = s.prefill(prompt, false);
    RoutingControl c;
    c.disabled.assign(size_t(model->spec.n_layers), {});
    c.disabled[1].assign(16, 0);
    c.disabled[1][size_t(r.expert_ids[0])] = 1;
    RunComparison cmp = compare_runs(s, prompt, p, c);
    QCOMPARE(cmp.original, (std::vector<int32_t>{159, 276, 232, 229, 207, 33, 273, 17}));  // the golden
    QCOMPARE(cmp.first_route_divergence_pos, 0);
    QCOMPARE(cmp.first_route_divergence_layer, 0);
    QVERIFY(cmp.routed_overlap < 1.0);
    QCOMPARE(cmp.changes.size(), cmp.original.size());
    for (const auto& ch : cmp.changes) QVERIFY(ch.p_original > 0.0 && ch.p_original <= 1.0);
    // A no-op intervention (top-k set to the model's own) changes nothing.
    RoutingControl none;
    none.top_k = model->spec.moe.router.top_k;
    RunComparison same = compare_runs(s, prompt, p, none);
    QCOMPARE(same.first_token_divergence, -1);
    QCOMPARE(same.first_route_divergence_pos, -1);
    for (const auto& ch : same.changes) QVERIFY(std::fabs(ch.p_original - ch.p_intervened) < 1e-9);
  }

  void kv_stats_mla() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3");
    auto be = make_backend(model, {"cpu", 100, 1});
    ForwardResult r;
    std::vector<int32_t> ids(20, 7);
    be->forward(ids, {}, r);
    KvStats k = be->kv_stats();
    QCOMPARE(k.tokens, int64_t(20));
    QCOMPARE(k.capacity, int64_t(100));
    QCOMPARE(k.blocks_used, int64_t(2));  // 16-token blocks
    QCOMPARE(k.bytes_per_token_layer, int64_t((24 + 16) * 4));     // latent + rope key, fp32
    QCOMPARE(k.mha_bytes_per_token_layer, int64_t(4 * (32 + 16) * 4));  // heads x (q_head + v) fp32
    be->truncate(5);
    QCOMPARE(be->kv_stats().tokens, int64_t(5));
  }
};

QTEST_GUILESS_MAIN(EngineUnitTest)
#include "test_engine_unit.moc"
