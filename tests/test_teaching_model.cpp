// The bundled teaching model (resources/models/moescope-tiny) does its job through the engine:
// it answers held-out prompts of its training domains in the chat (greedy, its own chat template)
// and its experts specialise by domain. Held-out prompts come from the model directory's
// eval_prompts.json (written by tools/train_teaching_model.py; none of them occurs in training).
// Measured figures are printed; thresholds sit a little below what was measured (README there).
#include <QtTest>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "moescope/backend.h"
#include "moescope/chat.h"
#include "moescope/model_weights.h"
#include "moescope/routing_trace.h"
#include "moescope/session.h"

using namespace moescope;
using ordered_json = nlohmann::ordered_json;

namespace {

std::string model_dir() { return std::string(MOESCOPE_SOURCE_DIR) + "/resources/models/moescope-tiny"; }

struct Answer {
  std::string text;
  // per MoE layer index: selections per expert over the prompt + answer tokens (specials excluded)
  std::vector<std::vector<int>> counts;
};

std::string first_integer(const std::string& s) {
  static const std::regex re("-?[0-9]+");
  std::smatch m;
  return std::regex_search(s, m, re) ? m.str() : std::string();
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \n\t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \n\t") - b + 1);
}

bool is_arithmetic(const std::string& task) {
  return task == "add2" || task == "add3" || task == "sub2" || task == "sub3";
}

double js_divergence(const std::vector<double>& p, const std::vector<double>& q) {  // base 2
  double d = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) d += 0.5 * p[i] * std::log2(p[i] / m);
    if (q[i] > 0) d += 0.5 * q[i] * std::log2(q[i] / m);
  }
  return d;
}

}  // namespace

class TeachingModelTest : public QObject {
  Q_OBJECT

  std::shared_ptr<const Model> model_;
  std::unique_ptr<ChatFormat> chat_;
  std::unique_ptr<Session> session_;
  nlohmann::json eval_;
  std::map<std::string, Answer> cache_;  // prompt -> answer (generation is deterministic)

  const Answer& ask(const std::string& prompt, int max_tokens) {
    if (auto it = cache_.find(prompt); it != cache_.end()) return it->second;
    ordered_json messages = ordered_json::array({{{"role", "user"}, {"content", prompt}}});
    ChatPrompt p = chat_->render(messages, true);
    if (p.used_fallback) qFatal("chat template not used: %s", p.fallback_reason.c_str());
    GenerateParams gp;
    gp.sampling.temperature = 0.0f;
    gp.max_tokens = max_tokens;
    gp.stop_ids = chat_->stop_ids();
    session_->reset();
    GenerateResult r = session_->generate(p.ids, gp);
    std::vector<int32_t> ids = r.generated;
    if (r.reason == StopReason::EndOfSequence && !ids.empty()) ids.pop_back();
    Answer a;
    a.text = chat_->tokenizer().decode(ids, /*skip_special_tokens=*/true);
    const RoutingTrace& tr = session_->trace();
    a.counts.assign(size_t(tr.n_moe_layers()), std::vector<int>(size_t(tr.n_experts()), 0));
    for (size_t t = 0; t < tr.size(); ++t) {
      if (tr.token(t).id <= 4) continue;  // <pad> <s> </s> <|im_start|> <|im_end|>
      for (int m = 0; m < tr.n_moe_layers(); ++m)
        for (int k = 0; k < tr.top_k(); ++k)
          if (int e = tr.expert(t, m, k); e >= 0) a.counts[size_t(m)][size_t(e)]++;
    }
    return cache_.emplace(prompt, std::move(a)).first->second;
  }

  static int max_tokens_for(const std::string& task) {
    return (task == "concepts" || task == "code" || task == "french") ? 48 : 16;
  }

  // Fraction of `task`'s first `limit` held-out prompts answered exactly (arithmetic: the first
  // integer of the answer is the result).
  double accuracy(const std::string& task, int limit) {
    const auto& items = eval_.at(task);
    int ok = 0, n = 0, shown = 0;
    for (const auto& it : items) {
      if (n == limit) break;
      const std::string prompt = it.at("prompt");
      const std::string want = it.at("answer");
      const Answer& a = ask(prompt, max_tokens_for(task));
      const bool good = is_arithmetic(task) ? first_integer(a.text) == want : trim(a.text) == trim(want);
      ok += good;
      ++n;
      if (!good && shown++ < 3)
        qInfo("  %s: %s -> \"%s\" (want \"%s\")", task.c_str(), prompt.c_str(), a.text.c_str(), want.c_str());
    }
    return n ? double(ok) / n : 0.0;
  }

private slots:
  void initTestCase() {
    const std::string dir = model_dir();
    if (!QFileInfo::exists(QString::fromStdString(dir + "/model.safetensors")))
      QFAIL(qPrintable(QString::fromStdString("bundled model missing: " + dir)));
    model_ = load_model(dir);
    chat_ = std::make_unique<ChatFormat>(ChatFormat::from_dir(dir));
    QVERIFY2(chat_->has_template(), chat_->template_problem().c_str());
    session_ = std::make_unique<Session>(model_, make_backend(model_, {"cpu", 512, 2}));
    std::ifstream in(dir + "/eval_prompts.json");
    eval_ = nlohmann::json::parse(in);
    QCOMPARE(model_->spec.moe_layer_indices().size(), size_t(3));
  }

  void modelShape() {
    // DeepSeek-V3 scaled down: MLA with q LoRA, one dense first layer, then MoE layers with a
    // shared expert and 16 routed experts, sigmoid + correction bias, group-limited top-4.
    QVERIFY(!model_->weights.layers[0].dense.gate.shape.empty());
    QVERIFY(model_->weights.layers[1].experts.size() == 16);
    QVERIFY(model_->weights.layers[1].router_bias.data != nullptr);
    auto stop = chat_->stop_ids();
    QVERIFY(std::find(stop.begin(), stop.end(), 4) != stop.end());  // <|im_end|>
  }

  // >= 90% on held-out two-digit additions, 20 prompts in each of the phrasings
  // "What is a+b?", "What is a + b?", "Compute a+b.".
  void twoDigitAddition() {
    const auto& items = eval_.at("add2");
    QCOMPARE(int(items.size()), 60);
    int ok[3] = {0, 0, 0}, total[3] = {0, 0, 0};
    for (const auto& it : items) {
      const int ph = it.at("phrasing");
      const Answer& a = ask(it.at("prompt"), 16);
      const bool good = first_integer(a.text) == it.at("answer").get<std::string>();
      ok[ph] += good;
      total[ph]++;
      if (!good)
        qInfo("  add2: %s -> \"%s\" (want %s)", it.at("prompt").get<std::string>().c_str(), a.text.c_str(),
              it.at("answer").get<std::string>().c_str());
    }
    const int all = ok[0] + ok[1] + ok[2];
    qInfo("two-digit addition: %d/60 = %.1f%% (a+b? %d/%d, a + b? %d/%d, Compute a+b. %d/%d)", all,
          100.0 * all / 60, ok[0], total[0], ok[1], total[1], ok[2], total[2]);
    QVERIFY2(all >= 54, qPrintable(QString("%1/60 < 90%").arg(all)));
  }

  void otherTasks_data() {
    QTest::addColumn<QString>("task");
    QTest::addColumn<int>("limit");
    QTest::addColumn<double>("threshold");
    // Thresholds: a little below the accuracy measured when the model was trained (README):
    // add3 7.5%, sub2 60%, sub3 2.5% (multi-digit arithmetic is barely learned; reported, not
    // required), concepts 94%, code 100%, french 92%, strings 81%.
    QTest::newRow("add3") << "add3" << 40 << 0.025;
    QTest::newRow("sub2") << "sub2" << 40 << 0.5;
    QTest::newRow("sub3") << "sub3" << 40 << 0.0;
    QTest::newRow("concepts") << "concepts" << 36 << 0.85;
    QTest::newRow("code") << "code" << 40 << 0.9;
    QTest::newRow("french") << "french" << 60 << 0.85;
    QTest::newRow("strings") << "strings" << 72 << 0.7;
  }
  void otherTasks() {
    QFETCH(QString, task);
    QFETCH(int, limit);
    QFETCH(double, threshold);
    const double acc = accuracy(task.toStdString(), limit);
    qInfo("%s: %.1f%% exact (threshold %.0f%%)", qPrintable(task), 100 * acc, 100 * threshold);
    QVERIFY2(acc >= threshold, qPrintable(QString("%1: %2 < %3").arg(task).arg(acc).arg(threshold)));
  }

  // Per MoE layer, the distribution of token->expert selections differs between domains: mean
  // pairwise Jensen-Shannon divergence (base 2) above kMinJs in at least half of the MoE layers.
  // Measured: 0.068, 0.082, 0.112 (layers 1, 2, 3); 30 held-out prompts per domain.
  void expertSpecialisation() {
    constexpr double kMinJs = 0.05;
    const std::vector<std::pair<std::string, std::string>> domains = {
        {"arithmetic", "add2"}, {"concepts", "concepts"}, {"code", "code"}, {"french", "french"}, {"strings", "strings"}};
    const int n_layers = int(model_->spec.moe_layer_indices().size());
    const int n_experts = int(model_->weights.layers[1].experts.size());
    std::vector<std::vector<std::vector<double>>> dist;  // [domain][layer][expert]
    for (const auto& [name, task] : domains) {
      std::vector<std::vector<double>> c(size_t(n_layers), std::vector<double>(size_t(n_experts), 0.0));
      int n = 0;
      for (const auto& it : eval_.at(task)) {
        if (n++ == 30) break;
        const Answer& a = ask(it.at("prompt"), max_tokens_for(task));
        for (int m = 0; m < n_layers; ++m)
          for (int e = 0; e < n_experts; ++e) c[size_t(m)][size_t(e)] += a.counts[size_t(m)][size_t(e)];
      }
      for (auto& layer : c) {
        double s = 0;
        for (double x : layer) s += x;
        QVERIFY(s > 0);
        for (double& x : layer) x /= s;
      }
      dist.push_back(std::move(c));
    }
    int above = 0;
    for (int m = 0; m < n_layers; ++m) {
      double sum = 0, mn = 1;
      int pairs = 0;
      for (size_t i = 0; i < domains.size(); ++i)
        for (size_t j = i + 1; j < domains.size(); ++j) {
          const double d = js_divergence(dist[i][size_t(m)], dist[j][size_t(m)]);
          sum += d;
          mn = std::min(mn, d);
          ++pairs;
        }
      const double mean = sum / pairs;
      above += mean > kMinJs;
      qInfo("MoE layer %d: mean pairwise JS divergence %.3f (min %.3f) over %zu domains",
            model_->spec.moe_layer_indices()[size_t(m)], mean, mn, domains.size());
    }
    QVERIFY2(2 * above >= n_layers, qPrintable(QString("only %1 of %2 layers above JS %3").arg(above).arg(n_layers).arg(kMinJs)));
  }
};

QTEST_GUILESS_MAIN(TeachingModelTest)
#include "test_teaching_model.moc"
