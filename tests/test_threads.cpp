// The app's cross-thread pieces without Qt's event queue, so that ThreadSanitizer sees every
// synchronisation they rely on (tools/sanitize.sh tsan): an engine generating on its own thread
// with its CPU thread pool while another thread drains the StreamBuffer (as the controller's flush
// timer does) and then sets the stop flag, which ends the answer within one token.
// (The UI tests drive the same pieces through the engine host, whose values cross threads through
// ui::Mailbox; TSan runs them too, see tools/sanitize.sh. The mailbox itself is tested at the end.)
#include <QtTest>
#include <atomic>
#include <thread>

#include "moescope/model_weights.h"
#include "moescope/session.h"
#include "ui/stream_buffer.h"
#include "ui/thread_relay.h"

using namespace moescope;

namespace {

constexpr int kTokensBeforeStop = 5;

// What the app's worker does with the engine's callbacks: copies into the StreamBuffer. After
// kTokensBeforeStop tokens it waits for the stop flag, so that the answer is stopped there
// however fast the engine is (the stop is then seen before the next token).
class BufferObserver : public GenerationObserver {
public:
  BufferObserver(ui::StreamBuffer& buffer, const std::atomic<bool>& stop) : buffer_(buffer), stop_(stop) {}
  void on_token(int32_t id, double) override {
    buffer_.add_text(QString::number(id) + QLatin1Char(' '), 1, 1.0);
    if (tokens_.fetch_add(1, std::memory_order_relaxed) + 1 == kTokensBeforeStop) {
      QElapsedTimer waited;
      waited.start();
      while (!stop_.load() && waited.elapsed() < 60000) std::this_thread::yield();
    }
  }
  void on_trace(const RoutingTrace& trace, size_t first) override {
    buffer_.add_trace(trace, first);
    KvStats kv;
    kv.tokens = int64_t(trace.size());
    buffer_.set_kv(kv);
  }
  int tokens() const { return tokens_.load(std::memory_order_relaxed); }

private:
  ui::StreamBuffer& buffer_;
  const std::atomic<bool>& stop_;
  std::atomic<int> tokens_{0};
};

class Emitter : public QObject {
  Q_OBJECT
signals:
  void said(const QString& text);
};

}  // namespace

class TestThreads : public QObject {
  Q_OBJECT
private slots:
  void generate_drain_and_stop_across_threads() {
    auto model = load_model(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3");
    Session session(model, make_backend(model, {"cpu", 128, 2}));  // the pool's own threads too
    ui::StreamBuffer buffer;
    buffer.reset();
    std::atomic<bool> stop{false};
    BufferObserver observer(buffer, stop);
    GenerateParams p;
    p.max_tokens = 100;  // the context is 128: stopped well before it fills
    p.stop_at_eos = false;

    GenerateResult result;
    std::thread engine([&] { result = session.generate(std::vector<int32_t>{1, 142, 110, 10}, p, &observer, &stop); });
    // The UI side: drain until the tokens before the stop have streamed, stop, drain the rest.
    int taken_tokens = 0, taken_routes = 0, chunks = 0;
    auto drain = [&] {
      bool empty = true;
      ui::StreamChunk c = buffer.take(&empty);
      if (empty) return;
      ++chunks;
      taken_tokens += c.new_tokens;
      if (c.trace) {
        // Segments arrive in order, each starting where the previous one ended.
        QCOMPARE(size_t(c.trace->token(0).pos), size_t(taken_routes));
        taken_routes += int(c.trace->size());
      }
      QVERIFY(c.total_tokens >= taken_tokens);
    };
    QElapsedTimer timer;
    timer.start();
    while (observer.tokens() < kTokensBeforeStop && timer.elapsed() < 60000) {
      drain();
      std::this_thread::yield();
    }
    stop.store(true);
    engine.join();
    drain();

    QCOMPARE(result.reason, StopReason::Cancelled);
    QCOMPARE(int(result.generated.size()), kTokensBeforeStop);  // stopped within one token
    QCOMPARE(taken_tokens, int(result.generated.size()));  // every streamed token taken once
    QCOMPARE(size_t(taken_routes), session.trace().size());
    QVERIFY(chunks >= 1);
  }

  // The mailbox the engine host's values cross threads through: jobs posted from another thread
  // (from several, interleaved) run in the mailbox's own thread, each once, in the order each
  // poster posted them, with values written before the post visible to the job.
  void mailbox_runs_jobs_in_its_thread_in_order() {
    QThread receiver;
    auto* box = new ui::Mailbox;
    box->moveToThread(&receiver);
    receiver.start();
    constexpr int kPerPoster = 2000;
    std::mutex mu;
    std::vector<int> seen[2];
    std::atomic<int> wrong_thread{0};
    std::vector<int> payload(2 * kPerPoster, 0);
    auto post_all = [&](int poster) {
      for (int i = 0; i < kPerPoster; ++i) {
        const int slot = poster * kPerPoster + i;
        payload[size_t(slot)] = slot + 1;  // plain write, published by post()
        box->post([&, poster, i, slot] {
          if (QThread::currentThread() != &receiver) ++wrong_thread;
          std::lock_guard lock(mu);
          seen[poster].push_back(payload[size_t(slot)] == slot + 1 ? i : -1);
        });
      }
    };
    std::thread a(post_all, 0), b(post_all, 1);
    a.join();
    b.join();
    QTRY_COMPARE_WITH_TIMEOUT(int(box->pending()), 0, 60000);
    {
      std::lock_guard lock(mu);
      for (const auto& s : seen) {
        QCOMPARE(int(s.size()), kPerPoster);
        for (int i = 0; i < kPerPoster; ++i) QCOMPARE(s[size_t(i)], i);
      }
    }
    QCOMPARE(wrong_thread.load(), 0);

    // relay(): a signal's arguments are copied when it is emitted and the slot runs over there.
    Emitter sender;
    QString got;
    QThread* ran_in = nullptr;
    ui::relay(&sender, &Emitter::said, box, [&](const QString& name) {
      std::lock_guard lock(mu);
      got = name;
      ran_in = QThread::currentThread();
    });
    QString name = QStringLiteral("first");
    emit sender.said(name);
    name = QStringLiteral("changed after the emit");
    QTRY_VERIFY_WITH_TIMEOUT([&] { std::lock_guard lock(mu); return ran_in != nullptr; }(), 60000);
    {
      std::lock_guard lock(mu);
      QCOMPARE(got, QStringLiteral("first"));
      QCOMPARE(ran_in, &receiver);
    }
    receiver.quit();
    receiver.wait();
    delete box;
  }
};

QTEST_GUILESS_MAIN(TestThreads)
#include "test_threads.moc"
