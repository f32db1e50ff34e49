// The load test behind tools/soak.sh: one long-running process that chats without pause for a
// given time the way the desktop app does, so that leaks and slow growth show up in its RSS.
// Each round opens a conversation (a new Session on the shared model, as the app's worker does),
// asks one to three questions through the chat template, records the routing trace, autosaves
// through ConversationStore, and closes it again; every 25 rounds the model itself is closed and
// loaded again, and old conversations are deleted so the folder stays small.
//
//   moescope-soak --model DIR --seconds N --data-dir DIR [--threads T]
//
// Prints one status line a minute and a final summary:
//   soak: done rounds=R answers=A tokens=T rss_start_kb=S rss_end_kb=E rss_max_kb=M
#include <QCoreApplication>
#include <QDir>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "soak_common.h"

#include "moescope/backend.h"
#include "moescope/chat.h"
#include "moescope/model_weights.h"
#include "moescope/routing_trace.h"
#include "moescope/session.h"
#include "ui/conversation_store.h"

using namespace moescope;
using moescope::soak::kQuestions;
using moescope::soak::rss_kb;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  std::string model_dir, data_dir;
  double seconds = 60;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--data-dir")) data_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
  }
  if (model_dir.empty() || data_dir.empty()) {
    std::fprintf(stderr, "usage: moescope-soak --model DIR --seconds N --data-dir DIR [--threads T]\n");
    return 2;
  }
  try {
    ui::ConversationStore store(QString::fromStdString(data_dir));
    const ChatFormat chat = ChatFormat::from_dir(model_dir);
    std::shared_ptr<const Model> model = load_model(model_dir);
    const auto t0 = Clock::now();
    auto last_report = t0;
    long rss_start = -1, rss_max = 0;
    long rounds = 0, answers = 0, tokens = 0;
    while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
      if (rounds > 0 && rounds % 25 == 0) {  // close and reopen the model
        model.reset();
        model = load_model(model_dir);
      }
      ui::Conversation c = ui::Conversation::create();
      c.model_dir = QString::fromStdString(model_dir);
      c.sampling.seed = uint64_t(rounds);
      Session session(model, make_backend(model, {"cpu", 0, threads}));
      const int turns = 1 + int(rounds % 3);
      for (int t = 0; t < turns; ++t) {
        c.messages.push_back({QStringLiteral("user"), QString::fromUtf8(kQuestions[(rounds + t) % soak::kQuestionCount])});
        const ChatPrompt prompt = chat.render(c.template_messages());
        GenerateParams p;
        p.max_tokens = 48;
        p.sampling.temperature = 0.8f;
        p.sampling.top_p = 0.95f;
        p.sampling.seed = uint64_t(rounds * 10 + t);
        p.stop_ids = chat.stop_ids();
        if (int(prompt.ids.size()) + p.max_tokens >= session.backend().context_length()) break;
        const GenerateResult r = session.generate(prompt.ids, p);
        std::string answer = chat.tokenizer().decode(r.generated, true);
        ui::Message m{QStringLiteral("assistant"), QString::fromStdString(answer)};
        m.tokens = int(r.generated.size());
        c.messages.push_back(m);
        c.trace = session.trace().to_json();
        const QString err = store.save(c);  // autosave after every answer, as the app does
        if (!err.isEmpty()) throw std::runtime_error("autosave failed: " + err.toStdString());
        ++answers;
        tokens += long(r.generated.size());
      }
      ++rounds;
      if (rounds % 10 == 0) {  // reopen the folder; keep the five newest conversations
        auto loaded = store.load_all();
        if (!loaded.problems.isEmpty()) throw std::runtime_error(loaded.problems.first().toStdString());
        for (size_t i = 5; i < loaded.conversations.size(); ++i) store.remove(loaded.conversations[i].id);
      }
      const long rss = rss_kb();
      if (rss_start < 0) rss_start = rss;  // after the first round: model mapped, buffers allocated
      rss_max = std::max(rss_max, rss);
      if (Clock::now() - last_report > std::chrono::seconds(60)) {
        last_report = Clock::now();
        std::printf("soak: t=%.0fs rounds=%ld answers=%ld tokens=%ld rss_kb=%ld\n",
                    std::chrono::duration<double>(Clock::now() - t0).count(), rounds, answers, tokens, rss);
        std::fflush(stdout);
      }
    }
    std::printf("soak: done rounds=%ld answers=%ld tokens=%ld rss_start_kb=%ld rss_end_kb=%ld rss_max_kb=%ld\n",
                rounds, answers, tokens, rss_start, rss_kb(), rss_max);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: FAILED: %s\n", e.what());
    return 1;
  }
  return 0;
}
