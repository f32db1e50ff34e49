// The app's cross-thread pieces without Qt's event queue, so that ThreadSanitizer sees every
// synchronisation they rely on (tools/sanitize.sh tsan): an engine generating on its own thread
// with its CPU thread pool while another thread drains the StreamBuffer (as the controller's flush
// timer does) and then sets the stop flag, which ends the answer within one token.
// (The UI tests that hand values between QThreads through queued signals are left out of the TSan
// run: Qt's event queue synchronises through its own futex-based mutex, which an uninstrumented
// Qt hides from TSan; see tools/sanitize.sh.)
#include <QtTest>
#include <atomic>
#include <thread>

#include "moescope/model_weights.h"
#include "moescope/session.h"
#include "ui/stream_buffer.h"

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
};

QTEST_GUILESS_MAIN(TestThreads)
#include "test_threads.moc"
