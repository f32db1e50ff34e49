// Corpus analysis checked against counts taken by hand from the routing trace of the same tokens.
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>

#include "moescope/chat.h"
#include "moescope/corpus_analysis.h"
#include "moescope/routing_stats.h"

using namespace moescope;

namespace {
const std::string kModel = std::string(MOESCOPE_TEST_DATA) + "/models/chat-tiny";
}

class AnalysisTest : public QObject {
  Q_OBJECT

private slots:
  void load_matches_hand_counts() {
    auto model = load_model(kModel);
    ChatFormat chat = ChatFormat::from_dir(kModel);
    std::vector<Domain> domains = {{"english", "The router sends every token to a few experts."},
                                   {"code", "def f(x):\n    return x * 2\n"}};
    Session s(model, make_backend(model, {"cpu", 256, 1}));
    size_t last_done = 0;
    AnalysisOptions opt;
    opt.progress = [&](size_t done, size_t) { last_done = done; };
    CorpusAnalysis a = analyze_corpus(s, chat.tokenizer(), domains, opt);
    QCOMPARE(a.domains.size(), size_t(2));
    for (size_t d = 0; d < 2; ++d) {
      // Hand count: the same tokens through a fresh session, loads summed from its trace.
      auto ids = chat.tokenizer().encode(domains[d].text);
      Session ref(model, make_backend(model, {"cpu", 256, 1}));
      ref.prefill(ids, false);
      RoutingStats st = RoutingStats::for_trace(ref.trace());
      st.add_all(ref.trace());
      QCOMPARE(a.domains[d].tokens, int64_t(ids.size()));
      for (int m = 0; m < int(a.moe_layers.size()); ++m) {
        QCOMPARE(a.domains[d].load[size_t(m)], st.load(m));
        int64_t top1 = 0;
        for (int64_t c : a.domains[d].top1[size_t(m)]) top1 += c;
        QCOMPARE(top1, int64_t(ids.size()));
      }
    }
    QCOMPARE(last_done, chat.tokenizer().encode(domains[0].text).size() + chat.tokenizer().encode(domains[1].text).size());
    // JS divergence: symmetric, zero for a domain against itself, bounded by ln 2.
    QCOMPARE(a.js_divergence(0, 0, 0), 0.0);
    QVERIFY(std::fabs(a.js_divergence(0, 1, 0) - a.js_divergence(1, 0, 0)) < 1e-12);
    QVERIFY(a.js_divergence(0, 1, 0) > 0.0 && a.js_divergence(0, 1, 0) <= std::log(2.0));
    QCOMPARE(a.domains[0].consistency.size(), a.moe_layers.size() - 1);

    QTemporaryDir tmp;
    a.write(tmp.path().toStdString(), chat.tokenizer());
    std::ifstream load(tmp.path().toStdString() + "/load.csv");
    std::string line;
    int rows = -1;
    while (std::getline(load, line)) ++rows;
    QCOMPARE(rows, int(2 * a.moe_layers.size() * size_t(a.n_experts)));
    for (const char* f : {"balance.csv", "specialisation.csv", "tokens.csv", "consistency.csv", "divergence.csv",
                          "summary.json"})
      QVERIFY2(QFile::exists(tmp.path() + "/" + f), f);
  }

  // Windows restart the cache: the totals still cover every token.
  void windows_cover_every_token() {
    auto model = load_model(kModel);
    ChatFormat chat = ChatFormat::from_dir(kModel);
    std::vector<Domain> domains = {{"d", "one two three four five six seven eight nine ten eleven twelve"}};
    Session s(model, make_backend(model, {"cpu", 256, 1}));
    AnalysisOptions opt;
    opt.window = 5;
    CorpusAnalysis a = analyze_corpus(s, chat.tokenizer(), domains, opt);
    QCOMPARE(a.domains[0].tokens, int64_t(chat.tokenizer().encode(domains[0].text).size()));
  }

  void corpus_errors() {
    QVERIFY_THROWS_EXCEPTION(Error, read_corpus("/nonexistent/corpus"));
    QTemporaryDir empty;
    QVERIFY_THROWS_EXCEPTION(Error, read_corpus(empty.path().toStdString()));
  }
};

QTEST_GUILESS_MAIN(AnalysisTest)
#include "test_analysis.moc"
