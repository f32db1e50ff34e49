// Routing dumps opened lazily (engine/include/moescope/routing_dump.h): .npy and .safetensors
// arrays written here, JSON lines built from the stored vLLM responses; every sequence and the
// statistics checked against counts made here from the same numbers, and each bad dump ending in
// one clear error.
#include <QtTest>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "expect_error.h"
#include "remote_samples.h"
#include "moescope/error.h"
#include "moescope/routing_dump.h"

using namespace moescope;
using namespace moescope::remote;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(MOESCOPE_TEST_DATA) / "remote";

using moescope::test::expect_error;

std::string shape_tuple(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  return s + ")";
}

// A .npy file (format 1.0) of `descr` elements.
void write_npy(const fs::path& path, const std::string& descr, const std::vector<int64_t>& shape, const std::string& bytes) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t n = uint16_t(dict.size());
  out.write(reinterpret_cast<const char*>(&n), 2);
  out << dict << bytes;
}

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
// A .safetensors file: 8-byte little-endian header length, the JSON header, the data.
void write_safetensors(const fs::path& path, const std::vector<StTensor>& tensors, size_t cut = 0) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  h["__metadata__"] = {{"format", "routing"}};
  const std::string header = h.dump();
  const uint64_t n = header.size();
  std::string file(reinterpret_cast<const char*>(&n), 8);
  file += header + data;
  if (cut) file.resize(file.size() - cut);
  std::ofstream(path, std::ios::binary) << file;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// The numbers every array dump here holds: S sequences of T tokens, L = 3 layers (layer 0 dense
// in the model below, so the payload counts every layer), top-2 of 8 experts. A few slots are
// "none" (-1); the tail of sequences 1 and 2 is padding (token id -1).
struct Data {
  int S = 3, T = 5, L = 3, K = 2;
  std::vector<int32_t> ids;     // [S][T][L][K]
  std::vector<int32_t> tokens;  // [S][T]
  std::vector<float> weights;   // [S][T][L][K]
  int64_t at(int s, int t, int l, int k) const { return ((int64_t(s) * T + t) * L + l) * K + k; }
  Data(int s, int t) : S(s), T(t) {
    ids.resize(size_t(S) * T * L * K);
    weights.resize(ids.size());
    tokens.resize(size_t(S) * T);
    for (int a = 0; a < S; ++a)
      for (int b = 0; b < T; ++b) {
        tokens[size_t(a * T + b)] = (a == 1 && b >= T - 2) || (a == 2 && b == T - 1) ? -1 : 1000 + 10 * a + b;
        for (int l = 0; l < L; ++l)
          for (int k = 0; k < K; ++k) {
            ids[size_t(at(a, b, l, k))] = (a * 7 + b * 3 + l * 2 + k * 5 + (b / 7) * (b % 3)) % 8;
            weights[size_t(at(a, b, l, k))] = 0.25f * float(k + 1) + 0.125f * float(l);
          }
        if (b % 4 == 1) ids[size_t(at(a, b, 1, 1))] = -1;
      }
  }
  bool padding(int s, int t) const { return tokens[size_t(s * T + t)] < 0; }
  // Loads counted directly: [moe layer][expert] over the payload layers `rows`.
  std::vector<std::vector<int64_t>> loads(const std::vector<int>& rows, bool skip_padding, int64_t& n_tokens) const {
    std::vector<std::vector<int64_t>> out(rows.size(), std::vector<int64_t>(8, 0));
    n_tokens = 0;
    for (int a = 0; a < S; ++a)
      for (int b = 0; b < T; ++b) {
        if (skip_padding && padding(a, b)) continue;
        ++n_tokens;
        for (size_t m = 0; m < rows.size(); ++m)
          for (int k = 0; k < K; ++k) {
            const int32_t e = ids[size_t(at(a, b, rows[m], k))];
            if (e >= 0) ++out[m][size_t(e)];
          }
      }
    return out;
  }
  template <class T>
  std::vector<T> ids_as() const {
    return std::vector<T>(ids.begin(), ids.end());
  }
};

using moescope::test::sample_shape;

void check_stats(const RoutingStats& st, const std::vector<std::vector<int64_t>>& want, int64_t tokens) {
  QCOMPARE(st.tokens(), tokens);
  QCOMPARE(st.n_experts(), 8);
  QCOMPARE(size_t(st.moe_layers().size()), want.size());
  for (size_t m = 0; m < want.size(); ++m) QCOMPARE(st.load(int(m)), want[m]);
}

// Every sequence of the dump equals the data: padding left out, ids, token ids, weights.
void check_sequences(const RoutingDump& d, const Data& x, bool with_weights, bool with_tokens = true) {
  QCOMPARE(d.sequences(), int64_t(x.S));
  const std::vector<int> rows{1, 2};
  for (int s = 0; s < x.S; ++s) {
    const RoutingTrace tr = d.sequence(s);
    QCOMPARE(tr.moe_layers(), (std::vector<int>{1, 2}));
    QCOMPARE(tr.has_weights(), with_weights);
    size_t i = 0;
    for (int t = 0; t < x.T; ++t) {
      if (with_tokens && x.padding(s, t)) continue;
      QVERIFY(i < tr.size());
      QCOMPARE(tr.token(i).pos, t);
      QCOMPARE(tr.token(i).id, with_tokens ? x.tokens[size_t(s * x.T + t)] : 0);
      QVERIFY(tr.token(i).text.empty());
      for (int m = 0; m < 2; ++m)
        for (int k = 0; k < x.K; ++k) {
          QCOMPARE(tr.expert(i, m, k), int(x.ids[size_t(x.at(s, t, rows[size_t(m)], k))]));
          if (with_weights && tr.expert(i, m, k) >= 0)
            QCOMPARE(tr.weight(i, m, k), x.weights[size_t(x.at(s, t, rows[size_t(m)], k))]);
        }
      ++i;
    }
    QCOMPARE(tr.size(), i);
  }
}

}  // namespace

class RoutingDumpTest : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  fs::path dir() const { return fs::path(tmp_.path().toStdString()); }

private slots:
  void npy_dump() {
    const Data x(3, 5);
    const fs::path ids = dir() / "routed.npy", tok = dir() / "tokens.npy";
    write_npy(ids, "<i2", {x.S, x.T, x.L, x.K}, bytes_of(x.ids_as<int16_t>()));
    write_npy(tok, "<i4", {x.S, x.T}, bytes_of(x.tokens));
    const auto d = RoutingDump::open(ids, sample_shape(), tok);
    QCOMPARE(d->format(), std::string("npy"));
    QCOMPARE(d->shape().top_k, 2);
    QCOMPARE(d->shape().n_layers, 3);
    check_sequences(*d, x, false);
    QCOMPARE(d->sequence_label(1), std::string("sequence 1, 3 tokens"));
    QCOMPARE(d->sequence_label(0), std::string("sequence 0, 5 tokens"));
    int64_t n = 0;
    const auto want = x.loads({1, 2}, true, n);
    QCOMPARE(n, int64_t(5 + 3 + 4));
    check_stats(d->stats(), want, n);
    check_stats(dump_stats(ids, sample_shape(), tok), want, n);  // the one-call form: the same
    expect_error([&] { d->sequence(3); }, "routed.npy: no sequence 3 (the dump has 3)");
    expect_error([&] { d->sequence(-1); }, "no sequence -1");

    // Without the model: layers 0..L-1, experts = the largest id + 1; without token ids every
    // position counts.
    const auto bare = RoutingDump::open(ids, {});
    QCOMPARE(bare->shape().n_experts, 0);
    QCOMPARE(bare->shape().moe_layers, (std::vector<int>{0, 1, 2}));
    const auto all = x.loads({0, 1, 2}, false, n);
    check_stats(bare->stats(), all, n);
    QCOMPARE(bare->sequence(1).size(), size_t(x.T));
    QCOMPARE(bare->sequence(1).n_experts(), 8);
  }

  void rank3_npy_is_one_sequence() {
    const Data x(1, 6);
    const fs::path ids = dir() / "one.npy";
    write_npy(ids, "<i8", {x.T, x.L, x.K}, bytes_of(x.ids_as<int64_t>()));
    const auto d = RoutingDump::open(ids, sample_shape());
    QCOMPARE(d->sequences(), int64_t(1));
    check_sequences(*d, x, false, false);
    QCOMPARE(d->sequence_label(0), std::string("sequence 0, 6 tokens"));
  }

  // Enough tokens for several workers: the merged counts equal the direct count, whatever the
  // number of threads (and an uneven split).
  void stats_over_threads_data() {
    QTest::addColumn<QByteArray>("threads");
    QTest::newRow("1 thread") << QByteArray("1");
    QTest::newRow("2 threads") << QByteArray("2");
    QTest::newRow("3 threads") << QByteArray("3");
  }
  void stats_over_threads() {
    QFETCH(QByteArray, threads);
    const Data x(7, 3001);
    const fs::path ids = dir() / "many.npy", tok = dir() / "many_tokens.npy";
    write_npy(ids, "<i4", {x.S, x.T, x.L, x.K}, bytes_of(x.ids));
    write_npy(tok, "<i4", {x.S, x.T}, bytes_of(x.tokens));
    qputenv("MOESCOPE_DUMP_THREADS", threads);
    int64_t n = 0;
    const auto want = x.loads({1, 2}, true, n);
    const auto d = RoutingDump::open(ids, sample_shape(), tok);
    std::vector<std::pair<int64_t, int64_t>> seen;
    DumpProgress p;
    p.progress = [&](int64_t done, int64_t total) { seen.emplace_back(done, total); };
    check_stats(d->stats(p), want, n);
    QVERIFY(!seen.empty());
    QCOMPARE(seen.back(), std::make_pair(int64_t(x.S) * x.T, int64_t(x.S) * x.T));
    const auto bare = RoutingDump::open(ids, {});  // the expert count found while counting
    const auto all = x.loads({0, 1, 2}, false, n);
    check_stats(bare->stats(), all, n);
    qunsetenv("MOESCOPE_DUMP_THREADS");
  }

  void cancel() {
    const Data x(7, 3001);
    const fs::path ids = dir() / "cancel.npy";
    write_npy(ids, "<i4", {x.S, x.T, x.L, x.K}, bytes_of(x.ids));
    const auto d = RoutingDump::open(ids, sample_shape());
    std::atomic<bool> stop{true};
    DumpProgress p;
    p.cancel = &stop;
    expect_error([&] { d->stats(p); }, "cancelled");
  }

  // stats() on a worker thread while this thread reads the dump (run under TSan by tools/sanitize.sh).
  void concurrent_use() {
    const Data x(7, 3001);
    const fs::path ids = dir() / "conc.npy";
    write_npy(ids, "<i2", {x.S, x.T, x.L, x.K}, bytes_of(x.ids_as<int16_t>()));
    const auto d = RoutingDump::open(ids, sample_shape());
    RoutingStats st;
    std::thread worker([&] { st = d->stats(); });
    size_t sizes = 0;
    for (int i = 0; i < 20; ++i) sizes += d->sequence(i % x.S).size() + size_t(d->sequences()) + d->format().size();
    worker.join();
    QVERIFY(sizes > 0);
    int64_t n = 0;
    const auto want = x.loads({1, 2}, false, n);
    check_stats(st, want, n);
  }

  void safetensors_dump() {
    const Data x(3, 5);
    const fs::path f = dir() / "rollouts.safetensors";
    write_safetensors(f, {{"routed_experts", "I16", {x.S, x.T, x.L, x.K}, bytes_of(x.ids_as<int16_t>())},
                          {"token_ids", "I64", {x.S, x.T}, bytes_of(std::vector<int64_t>(x.tokens.begin(), x.tokens.end()))},
                          {"routed_expert_weights", "F32", {x.S, x.T, x.L, x.K}, bytes_of(x.weights)}});
    const auto d = RoutingDump::open(f, sample_shape());
    QCOMPARE(d->format(), std::string("safetensors"));
    check_sequences(*d, x, true);
    int64_t n = 0;
    const auto want = x.loads({1, 2}, true, n);
    check_stats(d->stats(), want, n);
    check_stats(dump_stats(f, sample_shape()), want, n);

    // The same numbers in a .npy give the same statistics.
    const fs::path ids = dir() / "same.npy", tok = dir() / "same_tokens.npy";
    write_npy(ids, "<i2", {x.S, x.T, x.L, x.K}, bytes_of(x.ids_as<int16_t>()));
    write_npy(tok, "<i4", {x.S, x.T}, bytes_of(x.tokens));
    const RoutingStats a = dump_stats(ids, sample_shape(), tok), b = d->stats();
    for (int m = 0; m < 2; ++m) QCOMPARE(a.load(m), b.load(m));

    // One unnamed integer tensor of rank 3 (BF16 weights under the other name); token ids from a .npy.
    const Data y(1, 4);
    std::vector<uint16_t> bf16;
    for (float w : y.weights) {
      uint32_t u;
      std::memcpy(&u, &w, 4);
      bf16.push_back(uint16_t(u >> 16));
    }
    const fs::path g = dir() / "one.safetensors";
    write_safetensors(g, {{"weights", "BF16", {y.T, y.L, y.K}, bytes_of(bf16)},
                          {"experts", "I32", {y.T, y.L, y.K}, bytes_of(y.ids)}});
    const auto e = RoutingDump::open(g, sample_shape());
    check_sequences(*e, y, true, false);
    const fs::path ytok = dir() / "one_tokens.npy";
    write_npy(ytok, "<i4", {y.T}, bytes_of(y.tokens));
    check_sequences(*RoutingDump::open(g, sample_shape(), ytok), y, true, true);
  }

  void bad_safetensors() {
    const Data x(2, 4);
    const auto ids16 = bytes_of(x.ids_as<int16_t>());
    const std::vector<int64_t> shape{x.S, x.T, x.L, x.K};
    const fs::path f = dir() / "bad.safetensors";
    write_safetensors(f, {{"routed_experts", "I16", shape, ids16}}, 10);
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "bad.safetensors: tensor 'routed_experts' has data offsets [0, 96) outside the file's 86 data bytes (truncated file?)");
    write_safetensors(f, {{"routed_experts", "F32", shape, bytes_of(x.weights)}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "bad.safetensors: tensor 'routed_experts' has dtype F32; expert ids must be integers");
    write_safetensors(f, {{"routed_experts", "I16", shape, ids16}, {"token_ids", "I32", {x.S, x.T - 1}, bytes_of(std::vector<int32_t>(size_t(x.S * (x.T - 1))))}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "bad.safetensors: tensor 'token_ids' [2, 3] must have the shape of the routing's leading dimensions [2, 4]");
    write_safetensors(f, {{"routed_experts", "I16", shape, ids16}, {"token_ids", "F32", {x.S, x.T}, bytes_of(std::vector<float>(size_t(x.S * x.T)))}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "tensor 'token_ids' has dtype F32; token ids must be integers");
    write_safetensors(f, {{"routed_experts", "I16", shape, ids16}, {"weights", "F32", {x.S, x.T, x.L, 1}, bytes_of(std::vector<float>(size_t(x.S * x.T * x.L)))}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "tensor 'weights' [2, 4, 3, 1] must have the expert ids' shape [2, 4, 3, 2]");
    write_safetensors(f, {{"a", "I16", shape, ids16}, {"b", "I16", shape, ids16}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "several integer tensors of rank 3 or 4 ('a', 'b'); name the expert ids 'routed_experts'");
    write_safetensors(f, {{"logits", "F32", {2, 2}, bytes_of(std::vector<float>(4))}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "bad.safetensors: no expert ids");
    write_safetensors(f, {{"routed_experts", "I16", {x.T, 1, x.K}, bytes_of(std::vector<int16_t>(size_t(x.T * x.K)))}});
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "bad.safetensors: the routed experts have 1 layers a token");
    std::ofstream(f, std::ios::binary) << "abc";
    expect_error([&] { RoutingDump::open(f, sample_shape()); }, "bad.safetensors: truncated safetensors file (3 bytes)");
    // An expert id at or above the model's expert count names where it is.
    std::vector<int16_t> high = x.ids_as<int16_t>();
    high[size_t(x.at(1, 2, 2, 0))] = 9;
    write_safetensors(f, {{"routed_experts", "I16", shape, bytes_of(high)}});
    const auto d = RoutingDump::open(f, sample_shape());
    expect_error([&] { d->stats(); }, "bad.safetensors: expert id 9 (sequence 1, token 2) is not below the model's 8 experts");
    expect_error([&] { d->sequence(1); }, "expert id 9 (sequence 1, token 2)");
    QCOMPARE(d->sequence(0).size(), size_t(x.T));  // the other sequence reads
  }

  void npy_token_ids_of_another_shape() {
    const Data x(2, 4);
    const fs::path ids = dir() / "r.npy", tok = dir() / "t.npy";
    write_npy(ids, "<i2", {x.S, x.T, x.L, x.K}, bytes_of(x.ids_as<int16_t>()));
    write_npy(tok, "<i4", {x.S * x.T}, bytes_of(x.tokens));
    expect_error([&] { RoutingDump::open(ids, sample_shape(), tok); },
                 "t.npy: token ids [8] must have the shape of the routing's leading dimensions [2, 4]");
  }

  void json_lines() {
    // The stored vLLM responses, with blank lines between: line numbers count every line.
    std::ifstream in(kData / "dump_vllm.jsonl");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    QCOMPARE(lines.size(), size_t(3));
    const fs::path f = dir() / "rollouts.jsonl";
    std::ofstream(f) << lines[0] << "\n\n" << lines[1] << "\n" << lines[2] << "\n";
    TraceShape s = sample_shape();
    s.n_layers = 0;  // vLLM sends the MoE layers only
    s.moe_layers = {0, 1};
    const auto d = RoutingDump::open(f, s);
    QCOMPARE(d->format(), std::string("jsonl"));
    QCOMPARE(d->sequences(), int64_t(3));
    QCOMPARE(d->shape().top_k, 2);
    const RoutingStats all = d->stats();
    const RoutingStats want = dump_stats(kData / "dump_vllm.jsonl", s);
    QCOMPARE(all.tokens(), want.tokens());
    for (int m = 0; m < 2; ++m) QCOMPARE(all.load(m), want.load(m));
    const std::string label = d->sequence_label(0);
    QVERIFY2(label.rfind("response 0 (id chatcmpl-7f3a, line 1), ", 0) == 0, label.c_str());
    QVERIFY2(d->sequence_label(1).find("line 3") != std::string::npos, d->sequence_label(1).c_str());
    QVERIFY(d->sequence(0).size() > 0);

    // A malformed line (whole braces, so the index takes it): the line is named when it is read.
    const fs::path g = dir() / "broken.jsonl";
    std::ofstream(g) << lines[0] << "\n" << lines[1] << "\n\n" << "{\"id\": \"x\", \"choices\": [}\n" << lines[2] << "\n";
    const auto b = RoutingDump::open(g, s);
    QCOMPARE(b->sequences(), int64_t(4));
    expect_error([&] { b->stats(); }, "broken.jsonl line 4: ");
    expect_error([&] { b->sequence(2); }, "broken.jsonl line 4: ");
    QVERIFY(b->sequence(3).size() > 0);
    QVERIFY(b->sequence_label(2).find("unreadable") != std::string::npos);
    // A line cut short (a file still being written): found by open().
    std::ofstream(g) << lines[0] << "\n" << lines[1] << "\n" << lines[2].substr(0, lines[2].size() / 2) << "\n";
    expect_error([&] { RoutingDump::open(g, s); }, "broken.jsonl line 3: not one whole JSON response (cut short?)");
    std::ofstream(g) << lines[0] << "\nhello\n";
    expect_error([&] { RoutingDump::open(g, s); }, "broken.jsonl line 2: not one whole JSON response");
    std::ofstream(g) << "\n\n";
    expect_error([&] { RoutingDump::open(g, s); }, "broken.jsonl: no responses");
  }

  // Enough lines for two workers: the counts equal the one-thread ones, and of two malformed
  // lines the first in the file is named, whichever worker meets its line first.
  void json_lines_over_threads() {
    std::ifstream in(kData / "dump_vllm.jsonl");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    TraceShape s = sample_shape();
    s.n_layers = 0;
    s.moe_layers = {0, 1};
    auto write = [&](const fs::path& f, std::vector<int> bad) {
      std::ofstream out(f);
      for (int i = 1; i <= 60; ++i)
        out << (std::find(bad.begin(), bad.end(), i) != bad.end() ? std::string("{\"choices\": [}") : lines[size_t(i % 3)]) << "\n";
    };
    const fs::path f = dir() / "many.jsonl";
    write(f, {});
    qputenv("MOESCOPE_DUMP_THREADS", "1");
    const RoutingStats one = RoutingDump::open(f, s)->stats();
    qputenv("MOESCOPE_DUMP_THREADS", "2");
    const RoutingStats two = RoutingDump::open(f, s)->stats();
    const RoutingStats three = RoutingDump::open(kData / "dump_vllm.jsonl", s)->stats();
    QCOMPARE(two.tokens(), one.tokens());
    QCOMPARE(one.tokens(), 20 * three.tokens());
    for (int m = 0; m < 2; ++m) QCOMPARE(two.load(m), one.load(m));
    write(f, {45, 52});
    expect_error([&] { RoutingDump::open(f, s)->stats(); }, "many.jsonl line 45: ");
    write(f, {7, 45});
    expect_error([&] { RoutingDump::open(f, s)->stats(); }, "many.jsonl line 7: ");
    qunsetenv("MOESCOPE_DUMP_THREADS");
  }

  void trace_file() {
    RoutingTrace t("m", 4, 1, {0, 2});
    const int32_t ids[2] = {1, 3};
    const float w[2] = {1.0f, 1.0f};
    t.append(TraceToken{0, 5, "a", Phase::Prefill}, ids, w, 1);
    t.append(TraceToken{1, 6, "b", Phase::Decode}, ids, w, 1);
    const fs::path f = dir() / "t.json";
    t.save(f);
    const auto d = RoutingDump::open(f, {});
    QCOMPARE(d->format(), std::string("trace"));
    QCOMPARE(d->sequences(), int64_t(1));
    QVERIFY(d->sequence(0) == t);
    QCOMPARE(d->stats().tokens(), int64_t(2));
    QCOMPARE(d->sequence_label(0), std::string("trace of m, 2 tokens"));
    expect_error([&] { RoutingDump::open(f, {}, dir() / "t.json"); }, "apply to .npy and .safetensors dumps only");
  }
};

QTEST_GUILESS_MAIN(RoutingDumpTest)
#include "test_routing_dump.moc"
