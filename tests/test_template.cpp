// Chat templates: byte-identical rendering against transformers' goldens
// (tests/tools/gen_template_goldens.py), error reporting with template lines, the safety limits,
// and the `moescope-cli template` command.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "moescope/chat.h"
#include "moescope/chat_template.h"
#include "moescope/error.h"
#include "moescope/harmony.h"

using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

const fs::path kData = MOESCOPE_TEST_DATA;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json read_json(const fs::path& p) { return ordered_json::parse(read_file(p)); }

// Where two renderings first differ, for a failure message that shows the problem.
QString first_difference(const std::string& got, const std::string& want) {
  size_t k = 0;
  while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
  auto around = [&](const std::string& s) {
    size_t b = k > 40 ? k - 40 : 0;
    return QString::fromStdString(s.substr(b, 100)).toHtmlEscaped().replace("\n", "\\n");
  };
  return QString("differs at byte %1 (got %2 bytes, want %3)\n  got:  %4\n  want: %5")
      .arg(k).arg(got.size()).arg(want.size()).arg(around(got), around(want));
}

// The fixed local time a golden was rendered at ("now", for templates that call strftime_now()).
std::optional<std::tm> golden_now(const ordered_json& g) {
  if (!g.contains("now")) return std::nullopt;
  std::tm tm{};
  std::istringstream in(g["now"].get<std::string>());
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) throw std::runtime_error("bad \"now\" in a golden: " + g["now"].dump());
  return tm;
}

std::string render_snippet(const std::string& source, const ordered_json& vars, const std::optional<std::tm>& now) {
  return moescope::ChatTemplate::parse(source).render(vars, now);
}

}  // namespace

class TestTemplate : public QObject {
  Q_OBJECT

private slots:
  void goldens_data();
  void goldens();
  void snippets_data();
  void snippets();
  void load_config();
  void side_file_template();
  void strftime_now_clock();
  void harmony_chat_format();
  void harmony_channels_from_ids();
  void syntax_errors_carry_line();
  void raise_exception_carries_line();
  void unknown_filter_and_test();
  void hostile_templates();
  void plain_json_variables();
  void cli_template();
};

void TestTemplate::goldens_data() {
  QTest::addColumn<QString>("file");
  QTest::addColumn<int>("index");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kData / "templates" / "goldens")) {
    if (entry.path().filename() == "snippets.json" || entry.path().extension() != ".json") continue;
    ++files;
    ordered_json g = read_json(entry.path());
    for (size_t k = 0; k < g["cases"].size(); ++k) {
      std::string row = entry.path().stem().string() + "/" + g["cases"][k]["name"].get<std::string>();
      QTest::newRow(row.c_str()) << QString::fromStdString(entry.path().string()) << static_cast<int>(k);
    }
  }
  QVERIFY2(files >= 9, "expected goldens for 7 templates + 2 tokenizer configs");
}

void TestTemplate::goldens() {
  QFETCH(QString, file);
  QFETCH(int, index);
  ordered_json g = read_json(file.toStdString());
  const ordered_json& c = g["cases"][index];
  moescope::ChatTemplateConfig config;
  const std::string source = g["source"];
  if (source.rfind("tokenizers/", 0) == 0) {
    config = moescope::load_chat_template_config(kData / source);
  } else {
    config.source = read_file(kData / source);
    config.bos_token = g["bos_token"];
    config.eos_token = g["eos_token"];
  }
  config.now = golden_now(g);
  QCOMPARE(config.bos_token, g["bos_token"].get<std::string>());
  QCOMPARE(config.eos_token, g["eos_token"].get<std::string>());
  if (c.contains("error")) {
    try {
      moescope::apply_chat_template(config, c["messages"], c["add_generation_prompt"].get<bool>(), c["extra"]);
      QFAIL("expected a TemplateError");
    } catch (const moescope::TemplateError& e) {
      QCOMPARE(QString::fromStdString(e.detail()), QString::fromStdString(c["error"].get<std::string>()));
      QVERIFY2(e.line() >= 1, e.what());
      QVERIFY(std::string(e.what()).find("line " + std::to_string(e.line())) != std::string::npos);
    }
    return;
  }
  const std::string got =
      moescope::apply_chat_template(config, c["messages"], c["add_generation_prompt"].get<bool>(), c["extra"]);
  const std::string want = c["expected"];
  QVERIFY2(got == want, qPrintable(first_difference(got, want)));
}

void TestTemplate::snippets_data() {
  QTest::addColumn<int>("index");
  ordered_json s = read_json(kData / "templates" / "goldens" / "snippets.json");
  for (size_t k = 0; k < s["snippets"].size(); ++k) {
    std::string src = s["snippets"][k]["template"];
    std::string row = std::to_string(k) + ": " + src.substr(0, 50);
    std::replace(row.begin(), row.end(), '\n', ' ');
    std::replace(row.begin(), row.end(), '\r', ' ');
    QTest::newRow(row.c_str()) << static_cast<int>(k);
  }
}

void TestTemplate::snippets() {
  QFETCH(int, index);
  ordered_json s = read_json(kData / "templates" / "goldens" / "snippets.json");
  const ordered_json& c = s["snippets"][index];
  const std::string src = c["template"];
  if (c.contains("error")) {
    try {
      render_snippet(src, c["variables"], golden_now(s));
      QFAIL("expected a TemplateError");
    } catch (const moescope::TemplateError& e) {
      QCOMPARE(QString::fromStdString(e.detail()), QString::fromStdString(c["error"].get<std::string>()));
      QVERIFY2(e.line() >= 1, e.what());
    }
    return;
  }
  const std::string got = render_snippet(src, c["variables"], golden_now(s));
  const std::string want = c["expected"];
  QVERIFY2(got == want, qPrintable(first_difference(got, want)));
}

void TestTemplate::load_config() {
  auto ds = moescope::load_chat_template_config(kData / "tokenizers" / "deepseek-v3" / "tokenizer_config.json");
  QCOMPARE(ds.bos_token, std::string("<｜begin▁of▁sentence｜>"));  // from {"content": ...}
  QCOMPARE(ds.source, read_file(kData / "templates" / "deepseek-v3.jinja"));
  auto qwen = moescope::load_chat_template_config(kData / "tokenizers" / "qwen3" / "tokenizer_config.json");
  QCOMPARE(qwen.bos_token, std::string());  // null
  QCOMPARE(qwen.eos_token, std::string("<|im_end|>"));

  // llama2's config has no chat_template: a clear error naming the file.
  try {
    moescope::load_chat_template_config(kData / "tokenizers" / "llama2" / "tokenizer_config.json");
    QFAIL("expected an error");
  } catch (const moescope::Error& e) {
    QVERIFY2(std::string(e.what()).find("no chat_template") != std::string::npos, e.what());
  }

  QTemporaryDir dir;
  const fs::path cfg = dir.path().toStdString() + "/tokenizer_config.json";
  std::ofstream(cfg) << R"({"bos_token": "<s>", "chat_template": [
      {"name": "default", "template": "D{{ bos_token }}"}, {"name": "tool_use", "template": "T"}]})";
  QCOMPARE(moescope::load_chat_template_config(cfg).source, std::string("D{{ bos_token }}"));
  QCOMPARE(moescope::load_chat_template_config(cfg, "tool_use").source, std::string("T"));
  QVERIFY_THROWS_EXCEPTION(moescope::Error, moescope::load_chat_template_config(cfg, "rag"));
  std::ofstream(cfg) << R"({"chat_template": 5})";
  QVERIFY_THROWS_EXCEPTION(moescope::Error, moescope::load_chat_template_config(cfg));
  std::ofstream(cfg) << "{not json";
  QVERIFY_THROWS_EXCEPTION(moescope::Error, moescope::load_chat_template_config(cfg));
  QVERIFY_THROWS_EXCEPTION(moescope::Error, moescope::load_chat_template_config(dir.path().toStdString() + "/none.json"));

  moescope::ChatTemplateConfig c{"{{ messages|length }}", "", ""};
  QVERIFY_THROWS_EXCEPTION(moescope::Error, moescope::apply_chat_template(c, ordered_json::array(), true));
  QVERIFY_THROWS_EXCEPTION(moescope::Error, moescope::apply_chat_template(c, ordered_json::object(), true));
}

// gpt-oss ships its template as chat_template.jinja beside a tokenizer_config.json without one
// (openai/gpt-oss-20b's layout); that file wins over an embedded template, as in transformers.
void TestTemplate::side_file_template() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  std::ofstream(d / "tokenizer_config.json") << R"({"bos_token": "<|startoftext|>", "eos_token": "<|return|>"})";
  const std::string harmony = read_file(kData / "templates" / "gpt-oss.jinja");
  std::ofstream(d / "chat_template.jinja", std::ios::binary) << harmony;
  auto c = moescope::load_chat_template_config(d / "tokenizer_config.json");
  QCOMPARE(c.source, harmony);
  QCOMPARE(c.eos_token, std::string("<|return|>"));
  c.now = std::tm{};
  c.now->tm_year = 2025 - 1900, c.now->tm_mon = 7, c.now->tm_mday = 5;
  const ordered_json msgs = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  const std::string p = moescope::apply_chat_template(c, msgs, true);
  QVERIFY2(p.find("Current date: 2025-08-05\n") != std::string::npos, p.c_str());
  QVERIFY2(p.ends_with("<|start|>user<|message|>hi<|end|><|start|>assistant"), p.c_str());

  std::ofstream(d / "tokenizer_config.json") << R"({"chat_template": "embedded"})";
  QCOMPARE(moescope::load_chat_template_config(d / "tokenizer_config.json").source, harmony);
  fs::remove(d / "chat_template.jinja");
  QCOMPARE(moescope::load_chat_template_config(d / "tokenizer_config.json").source, std::string("embedded"));
}

// Without a fixed time strftime_now() reads the local clock, as transformers' datetime.now().
void TestTemplate::strftime_now_clock() {
  const auto t = moescope::ChatTemplate::parse("{{ strftime_now('%Y-%m-%d') }}");
  auto today = [] {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[16];
    return std::string(buf, std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm));
  };
  const std::string before = today(), got = t.render(ordered_json::object()), after = today();
  QVERIFY2(got == before || got == after, got.c_str());
  // A fixed time is reported as given, with the weekday worked out (2025-08-05 was a Tuesday).
  std::tm fixed{};
  fixed.tm_year = 125, fixed.tm_mon = 7, fixed.tm_mday = 5, fixed.tm_hour = 23, fixed.tm_min = 59;
  QCOMPARE(moescope::ChatTemplate::parse("{{ strftime_now('%A %d %b %H:%M %j') }}").render(ordered_json::object(), fixed),
           std::string("Tuesday 05 Aug 23:59 217"));
  try {
    moescope::ChatTemplate::parse("{{ strftime_now() }}").render(ordered_json::object(), fixed);
    QFAIL("expected a TypeError");
  } catch (const moescope::TemplateError& e) {
    QCOMPARE(e.detail(), std::string("strftime_now() missing 1 required positional argument: 'format'"));
  }
}

// A checkpoint laid out as openai/gpt-oss-20b's: chat_template.jinja beside tokenizer_config.json,
// a vocabulary with the harmony tokens (chat-tiny's tokenizer, its role tokens renamed). The
// answer runs through <|end|> (the analysis message's end) to <|return|>.
void TestTemplate::harmony_chat_format() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  std::string vocab = read_file(kData / "models" / "chat-tiny" / "tokenizer.json");
  for (auto [from, to] : {std::pair{"\"<|system|>\"", "\"<|start|>\""}, std::pair{"\"<|user|>\"", "\"<|channel|>\""},
                          std::pair{"\"<|assistant|>\"", "\"<|message|>\""}, std::pair{"\"<|begin|>\"", "\"<|return|>\""}}) {
    for (size_t at = vocab.find(from); at != std::string::npos; at = vocab.find(from, at))
      vocab.replace(at, std::string(from).size(), to);
  }
  std::ofstream(d / "tokenizer.json", std::ios::binary) << vocab;
  std::ofstream(d / "tokenizer_config.json") << R"({"bos_token": "<|startoftext|>", "eos_token": "<|return|>"})";
  std::ofstream(d / "chat_template.jinja", std::ios::binary) << read_file(kData / "templates" / "gpt-oss.jinja");

  const moescope::ChatFormat f = moescope::ChatFormat::from_dir(d);
  QVERIFY(f.harmony());
  QVERIFY2(f.has_template(), f.template_problem().c_str());
  const auto id = [&](const char* t) { return *f.tokenizer().token_to_id(t); };
  const std::vector<int32_t> stops = f.stop_ids();
  QVERIFY(std::find(stops.begin(), stops.end(), id("<|return|>")) != stops.end());
  QVERIFY(std::find(stops.begin(), stops.end(), id("<|end|>")) == stops.end());
  const auto msgs = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  const moescope::ChatPrompt p = f.render(msgs);
  QVERIFY2(!p.used_fallback, p.fallback_reason.c_str());
  QVERIFY(p.text.ends_with("<|start|>user<|message|>hi<|end|><|start|>assistant"));
  QCOMPARE(p.ids.front(), id("<|start|>"));
  QCOMPARE(p.ids.back() == id("<|start|>"), false);

  // Any other model keeps stopping at <|end|> (chat-tiny's end of turn) and is not harmony.
  const moescope::ChatFormat tiny = moescope::ChatFormat::from_dir(kData / "models" / "chat-tiny");
  QVERIFY(!tiny.harmony());
  const std::vector<int32_t> tiny_stops = tiny.stop_ids();
  QVERIFY(std::find(tiny_stops.begin(), tiny_stops.end(), *tiny.tokenizer().token_to_id("<|end|>")) != tiny_stops.end());
}

// The harmony answer as gpt-oss writes it, split by channel from its token ids (what `serve` does
// with a chat answer, as vLLM does for gpt-oss): analysis -> reasoning, final -> content, and no
// special token or header text in either. The vocabulary is chat-tiny's with its role tokens renamed
// to harmony's (as in harmony_chat_format; the real gpt-oss tokenizer is not in tests/data), so the
// ids are those of real special tokens of a tokenizer that ChatFormat takes for harmony.
void TestTemplate::harmony_channels_from_ids() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  std::string vocab = read_file(kData / "models" / "chat-tiny" / "tokenizer.json");
  for (auto [from, to] : {std::pair{"\"<|system|>\"", "\"<|start|>\""}, std::pair{"\"<|user|>\"", "\"<|channel|>\""},
                          std::pair{"\"<|assistant|>\"", "\"<|message|>\""}, std::pair{"\"<|begin|>\"", "\"<|return|>\""}}) {
    for (size_t at = vocab.find(from); at != std::string::npos; at = vocab.find(from, at))
      vocab.replace(at, std::string(from).size(), to);
  }
  std::ofstream(d / "tokenizer.json", std::ios::binary) << vocab;
  const moescope::Tokenizer tok = moescope::Tokenizer::from_file(d / "tokenizer.json");
  const auto id = [&](const char* t) { return *tok.token_to_id(t); };
  const auto ids = [&](const std::string& text) { return tok.encode(text, false); };
  const std::string answer =
      "<|channel|>analysis<|message|>The user asks 2+2. That is 4.<|end|>"
      "<|start|>assistant<|channel|>final<|message|>It is 4.<|return|>";
  const std::vector<int32_t> all = ids(answer);
  QVERIFY(std::find(all.begin(), all.end(), id("<|channel|>")) != all.end());
  QVERIFY(std::find(all.begin(), all.end(), id("<|return|>")) != all.end());

  moescope::HarmonyText h = moescope::HarmonyParser::parse(tok, all);
  QCOMPARE(h.reasoning, std::string("The user asks 2+2. That is 4."));
  QCOMPARE(h.content, std::string("It is 4."));
  QVERIFY(h.has_final);

  // One id at a time (streaming): the pieces add up to the same, reasoning pieces before content.
  {
    moescope::HarmonyParser p(tok);
    std::string r, c;
    bool content_started = false, reasoning_after_content = false;
    for (int32_t i : all) {
      const moescope::HarmonyText t = p.push(i);
      if (!t.content.empty()) content_started = true;
      if (!t.reasoning.empty() && content_started) reasoning_after_content = true;
      r += t.reasoning;
      c += t.content;
      QVERIFY(t.reasoning.find("<|") == std::string::npos && t.content.find("<|") == std::string::npos);
    }
    const moescope::HarmonyText t = p.flush();
    r += t.reasoning;
    c += t.content;
    QCOMPARE(r, h.reasoning);
    QCOMPARE(c, h.content);
    QVERIFY(!reasoning_after_content);
  }

  // Stopped in the middle of the reasoning (max_tokens): no content yet, and no final.
  std::vector<int32_t> cut = ids("<|channel|>analysis<|message|>Still thinking");
  h = moescope::HarmonyParser::parse(tok, cut);
  QCOMPARE(h.reasoning, std::string("Still thinking"));
  QCOMPARE(h.content, std::string());
  QVERIFY(!h.has_final);

  // Two reasoning messages (analysis, then a commentary preamble) are joined with "\n"; a tool call
  // (to=...) is reasoning too, its header left out.
  h = moescope::HarmonyParser::parse(
      tok, ids("<|channel|>analysis<|message|>First.<|end|><|start|>assistant<|channel|>commentary<|message|>Second.<|end|>"
               "<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{\"x\": 1}<|end|>"
               "<|start|>assistant<|channel|>final<|message|>Done.<|return|>"));
  QCOMPARE(h.reasoning, std::string("First.\nSecond.\n{\"x\": 1}"));
  QCOMPARE(h.content, std::string("Done."));

  // The header is never text, even when it runs over several tokens.
  h = moescope::HarmonyParser::parse(tok, ids("<|channel|>final<|message|>Only final.<|return|>"));
  QCOMPARE(h.reasoning, std::string());
  QCOMPARE(h.content, std::string("Only final."));

  // A model that ignores the format: its text is the content, not dropped.
  h = moescope::HarmonyParser::parse(tok, ids("Plain words."));
  QCOMPARE(h.content, std::string("Plain words."));
  QCOMPARE(h.reasoning, std::string());

  // A tokenizer without the harmony tokens is refused with one line.
  const moescope::Tokenizer tiny = moescope::Tokenizer::from_file(kData / "models" / "chat-tiny" / "tokenizer.json");
  try {
    moescope::HarmonyParser bad(tiny);
    QFAIL("a tokenizer without <|channel|> was taken for harmony");
  } catch (const moescope::Error& e) {
    QVERIFY2(std::string(e.what()).find("not gpt-oss' harmony format") != std::string::npos, e.what());
  }
}

void TestTemplate::syntax_errors_carry_line() {
  struct Case {
    const char* source;
    int line;
    const char* needle;
  };
  const Case cases[] = {
      {"a\n\n{% if x %}\n{% endfor %}", 4, "Encountered unknown tag 'endfor'"},
      {"{% for x in y %}\n{{ x }}", 2, "Unexpected end of template"},
      {"line\n{{ 1 + }}", 2, "Expected an expression"},
      {"{{ 'unterminated }}", 1, "string literal"},
      {"ok\n{% frobnicate %}", 2, "Encountered unknown tag 'frobnicate'"},
      {"{{ (1 }}", 1, "unexpected '}'"},
      {"\n\n{# open comment", 3, "Missing end of comment tag"},
      {"{% break %}", 1, "outside of a loop"},
      {"x\n{{ a b }}", 2, "expected end of print statement"},
  };
  for (const auto& c : cases) {
    try {
      moescope::ChatTemplate::parse(c.source);
      QFAIL(qPrintable(QString("no error for: %1").arg(c.source)));
    } catch (const moescope::TemplateError& e) {
      QVERIFY2(e.line() == c.line, qPrintable(QString("%1 -> %2").arg(c.source, e.what())));
      QVERIFY2(std::string(e.what()).find(c.needle) != std::string::npos, e.what());
      QVERIFY2(std::string(e.what()).find("line " + std::to_string(c.line)) != std::string::npos, e.what());
    }
  }
}

void TestTemplate::raise_exception_carries_line() {
  auto t = moescope::ChatTemplate::parse("first\n{% for m in messages %}\n{% if m.role == 'bad' %}"
                                         "{{ raise_exception('role ' ~ m.role ~ ' is not allowed') }}{% endif %}\n"
                                         "{% endfor %}");
  ordered_json vars = {{"messages", {{{"role", "user"}}, {{"role", "bad"}}}}};
  try {
    t.render(vars);
    QFAIL("expected raise_exception");
  } catch (const moescope::TemplateError& e) {
    QCOMPARE(e.line(), 3);
    QCOMPARE(e.detail(), std::string("role bad is not allowed"));
    QCOMPARE(std::string(e.what()), std::string("chat template error at line 3: role bad is not allowed"));
  }
  // An undefined variable used where jinja2 raises, on line 2.
  try {
    moescope::ChatTemplate::parse("ok\n{{ nothing.here }}").render(ordered_json::object());
    QFAIL("expected an undefined error");
  } catch (const moescope::TemplateError& e) {
    QCOMPARE(e.line(), 2);
    QCOMPARE(e.detail(), std::string("'nothing' is undefined"));
  }
}

void TestTemplate::unknown_filter_and_test() {
  try {
    moescope::ChatTemplate::parse("a\n{{ x | frobnicate }}");
    QFAIL("expected an unknown filter error");
  } catch (const moescope::TemplateError& e) {
    QCOMPARE(e.line(), 2);
    QCOMPARE(e.detail(), std::string("No filter named 'frobnicate'."));
  }
  try {
    moescope::ChatTemplate::parse("{% if x is frobnicated %}{% endif %}");
    QFAIL("expected an unknown test error");
  } catch (const moescope::TemplateError& e) {
    QCOMPARE(e.detail(), std::string("No test named 'frobnicated'."));
  }
}

void TestTemplate::hostile_templates() {
  const auto start = std::chrono::steady_clock::now();
  struct Case {
    std::string source;
    const char* needle;
  };
  const Case cases[] = {
      // Nested loops that would run 10^15 times.
      {"{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
       "{% endfor %}{% endfor %}{% endfor %}",
       "loop iterations"},
      // A string that doubles every iteration.
      {"{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "MiB"},
      {"{{ 'x' * 10000000000 }}", "MiB"},
      {"{% for i in range(1000000) %}{{ 'abcdefghijklmnopqrstuvwxyz' * 100 }}{% endfor %}", "MiB"},
      {"{{ range(10000000000)|length }}", "range too big"},
      // Quadratic building: each step copies everything built so far.
      {"{% set ns = namespace(s='', l=[]) %}{% for i in range(1000000) %}{% set ns.s = ns.s ~ 'abcdefgh' %}{% endfor %}",
       "quadratic"},
      {"{% set big = 'ab ' * 10000000 %}{% for i in range(1000000) %}{% if big %}{% endif %}{% endfor %}", "quadratic"},
      {"{% set ns = namespace(l=[]) %}{% for i in range(1000000) %}{% set ns.l = ns.l + [i, i] %}{% endfor %}",
       "quadratic"},
      {"{{ 'x'|indent(-5) }}", "indent width"},
      // Linear work on a big string, a million times.
      {"{% set big = 'ab ' * 10000000 %}{% for i in range(1000000) %}{{ big.strip()|length > 0 }}{% endfor %}",
       "quadratic"},
      // Unbounded recursion.
      {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper"},
      {"{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "nested too deeply"},
      {"{{ " + std::string(3000, '[') + " }}", "unexpected"},
      {"{{ 2 ** 5000 }}", "integer overflow"},
  };
  for (const auto& c : cases) {
    try {
      moescope::ChatTemplate::parse(c.source).render(ordered_json::object());
      if (*c.needle) QFAIL(qPrintable(QString::fromStdString("no error for: " + c.source.substr(0, 80))));
    } catch (const moescope::TemplateError& e) {
      QVERIFY2(std::string(e.what()).find(c.needle) != std::string::npos, e.what());
    }
  }
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The work budget bounds them; the wall-clock bound is for optimised builds (sanitizer builds run
  // unoptimised and instrumented, 10-50x slower, and CI shares its cores).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const double limit = 900;
#else
  const double limit = 30;
#endif
  QVERIFY2(seconds < limit, qPrintable(QString("hostile templates took %1 s").arg(seconds)));
}

void TestTemplate::plain_json_variables() {
  // nlohmann::json (sorted keys) works too; key order follows the json type.
  nlohmann::json vars = {{"x", {{"b", 1}, {"a", "é"}}}, {"add_generation_prompt", true}};
  QCOMPARE(moescope::ChatTemplate::parse("{{ x|tojson }} {{ add_generation_prompt }}").render(vars),
           std::string("{\"a\": \"é\", \"b\": 1} True"));
  moescope::ChatTemplateConfig c{"{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
                                 "{% if add_generation_prompt %}>{% endif %}",
                                 "<s>", "</s>"};
  nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  QCOMPARE(moescope::apply_chat_template(c, msgs, true), std::string("<s>[user:hi]>"));
}

void TestTemplate::cli_template() {
  const QString cli = MOESCOPE_CLI;
  QVERIFY2(QFileInfo::exists(cli), qPrintable("moescope-cli not built: " + cli));
  ordered_json g = read_json(kData / "templates" / "goldens" / "tokenizer-qwen3.json");
  QTemporaryDir dir;
  const QString model = QString::fromStdString((kData / "tokenizers" / "qwen3").string());
  auto run = [&](const QStringList& args, QByteArray* out, QByteArray* err) {
    QProcess p;
    p.start(cli, args);
    if (!p.waitForFinished(30000)) return -1;
    *out = p.readAllStandardOutput();
    *err = p.readAllStandardError();
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  };
  int checked = 0;
  for (const auto& c : g["cases"]) {
    if (c.contains("error") || !c["extra"].empty()) continue;
    const QString messages = dir.filePath(QString("m%1.json").arg(checked));
    std::ofstream(messages.toStdString()) << c["messages"].dump();
    QStringList args = {"template", "--model", model, "--messages", messages};
    if (!c["add_generation_prompt"].get<bool>()) args << "--no-generation-prompt";
    QByteArray out, err;
    QCOMPARE(run(args, &out, &err), 0);
    const std::string got = out.toStdString(), want = c["expected"];
    QVERIFY2(got == want, qPrintable(QString::fromStdString(c["name"].get<std::string>()) + ": " + first_difference(got, want)));
    ++checked;
  }
  QVERIFY(checked >= 4);

  // Bad input: one line on stderr, exit status 1.
  const QString bad = dir.filePath("bad.json");
  std::ofstream(bad.toStdString()) << "[{\"role\": \"user\", ";
  const QString empty = dir.filePath("empty.json");
  std::ofstream(empty.toStdString()) << "[]";
  const QString mixtral_dir = dir.filePath("mixtral");
  QDir().mkpath(mixtral_dir);
  std::ofstream((mixtral_dir + "/tokenizer_config.json").toStdString())
      << ordered_json{{"bos_token", "<s>"}, {"eos_token", "</s>"},
                      {"chat_template", read_file(kData / "templates" / "mixtral.jinja")}}.dump();
  const QString two_users = dir.filePath("two_users.json");
  std::ofstream(two_users.toStdString()) << R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])";
  const QStringList bad_runs[] = {
      {"template", "--model", model, "--messages", bad},
      {"template", "--model", model, "--messages", empty},
      {"template", "--model", model, "--messages", dir.filePath("missing.json")},
      {"template", "--model", dir.filePath("nowhere"), "--messages", empty},
      {"template", "--model", mixtral_dir, "--messages", two_users},
      {"template", "--messages", two_users, "--bogus"},
  };
  for (const auto& args : bad_runs) {
    QByteArray out, err;
    QCOMPARE(run(args, &out, &err), 1);
    QVERIFY2(out.isEmpty(), out.constData());
    QVERIFY2(err.count('\n') == 1 && err.endsWith('\n'), err.constData());
  }
  QByteArray out, err;
  run({"template", "--model", mixtral_dir, "--messages", two_users}, &out, &err);
  QVERIFY2(err.contains("Conversation roles must alternate") && err.contains("line 1"), err.constData());
}

QTEST_GUILESS_MAIN(TestTemplate)
#include "test_template.moc"
