// Faults from outside the program: a checkpoint file deleted or truncated while it is memory-mapped,
// a disk that fills up while a conversation is saved, and the program killed in the middle of a
// save. (GPU out-of-memory at load is the CUDA backend's pre-load check, tested in
// test_cuda_backend; closing the window during generation is in test_app.)
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>
#include <fstream>

#include "moescope/backend.h"
#include "moescope/checkpoint.h"
#include "moescope/error.h"
#include "moescope/mapped_files.h"
#include "moescope/model_weights.h"
#include "moescope/session.h"
#include "ui/conversation_store.h"

using namespace moescope;
namespace fs = std::filesystem;

namespace {

fs::path copy_model(const QTemporaryDir& tmp) {
  const fs::path dst = fs::path(tmp.path().toStdString()) / "model";
  fs::copy(fs::path(MOESCOPE_TEST_DATA) / "models/mixtral", dst, fs::copy_options::recursive);
  return dst;
}

GenerateParams few_tokens() {
  GenerateParams p;
  p.max_tokens = 4;
  p.stop_at_eos = false;
  return p;
}

ui::Conversation conversation_with(const QString& id, const QString& text) {
  ui::Conversation c = ui::Conversation::create();
  c.id = id;
  c.title = text.left(20);
  c.messages.push_back({QStringLiteral("user"), text});
  return c;
}

QByteArray read_all(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

}  // namespace

class TestFaults : public QObject {
  Q_OBJECT

private slots:
  // Unlinking a mapped file keeps its inode alive: generation goes on as if nothing happened.
  void checkpoint_deleted_while_mapped() {
    QTemporaryDir tmp;
    const fs::path dir = copy_model(tmp);
    auto model = load_model(dir);
    Session s(model, make_backend(model, {"cpu", 64, 2}));
    const std::vector<int32_t> prompt = {1, 142, 110};
    const GenerateResult before = s.generate(prompt, few_tokens());
    QVERIFY(fs::remove(dir / "model.safetensors"));
    s.reset();
    const GenerateResult after = s.generate(prompt, few_tokens());
    QCOMPARE(after.generated, before.generated);
  }

  // Truncated between two answers: the next generate is a clear Error naming the file.
  void checkpoint_truncated_between_answers() {
    QTemporaryDir tmp;
    const fs::path dir = copy_model(tmp);
    auto model = load_model(dir);
    Session s(model, make_backend(model, {"cpu", 64, 2}));
    const std::vector<int32_t> prompt = {1, 142, 110};
    s.generate(prompt, few_tokens());
    const fs::path file = dir / "model.safetensors";
    fs::resize_file(file, fs::file_size(file) / 2);
    try {
      s.generate(prompt, few_tokens());
      QFAIL("generate on a truncated checkpoint did not throw");
    } catch (const Error& e) {
      const QString m = QString::fromUtf8(e.what());
      QVERIFY2(m.contains(QStringLiteral("changed on disk")) && m.contains(QStringLiteral("model.safetensors")),
               qPrintable(m));
    }
    QVERIFY_THROWS_EXCEPTION(Error, check_mapped_files());
  }

  // Truncated while the weights are being read (here: between the check and the read, the worst
  // case): the SIGBUS handler names the file and exits with kTruncatedExitCode instead of a bare
  // "Bus error". Run in a child process, which it ends.
  void checkpoint_truncated_during_read_exits_cleanly() {
    QTemporaryDir tmp;
    const fs::path dir = copy_model(tmp);
    const fs::path file = dir / "model.safetensors";
    int err_pipe[2];
    QVERIFY(::pipe(err_pipe) == 0);
    const pid_t pid = ::fork();
    QVERIFY(pid >= 0);
    if (pid == 0) {
      ::dup2(err_pipe[1], STDERR_FILENO);
      auto ck = Checkpoint::open_file(file);
      fs::resize_file(file, 0);
      unsigned sum = 0;
      for (const auto& name : ck->names()) {
        const TensorView& t = ck->get(name);
        const auto* b = static_cast<const volatile uint8_t*>(t.data);
        for (size_t i = 0; i < t.nbytes(); i += 64) sum += b[i];
      }
      ::_exit(sum == 12345 ? 3 : 0);  // reaching here means no SIGBUS: wrong
    }
    ::close(err_pipe[1]);
    QByteArray err;
    char buf[512];
    for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) err.append(buf, n);
    ::close(err_pipe[0]);
    int status = 0;
    QCOMPARE(::waitpid(pid, &status, 0), pid);
    QVERIFY2(WIFEXITED(status), "the child died from a signal instead of exiting");
    QCOMPARE(WEXITSTATUS(status), kTruncatedExitCode);
    QVERIFY2(err.contains("was truncated or overwritten") && err.contains("model.safetensors"), err.constData());
  }

  // Disk full while autosaving: the write fails, save() says so, and the previous file is intact.
  // A file-size limit (RLIMIT_FSIZE) makes the write fail the way a full disk does (EFBIG instead
  // of ENOSPC), for root too and without mounting anything.
  void disk_full_while_saving_keeps_previous_file() {
    QTemporaryDir tmp;
    ui::ConversationStore store(tmp.path());
    const QString id = QStringLiteral("c1");
    QCOMPARE(store.save(conversation_with(id, QStringLiteral("first version"))), QString());
    const QByteArray before = read_all(store.path_of(id));
    QVERIFY(!before.isEmpty());

    struct rlimit old {};
    ::getrlimit(RLIMIT_FSIZE, &old);
    const auto old_xfsz = ::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills us at the limit
    struct rlimit small = old;
    small.rlim_cur = 1024;
    QVERIFY(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    const QString error = store.save(conversation_with(id, QString(64 * 1024, QLatin1Char('x'))));
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_xfsz);

    // Known bug, reported to the app engineer: ConversationStore::save() ignores QSaveFile::write's
    // short count (Qt returns the bytes written before EFBIG/ENOSPC without an error), so commit()
    // replaces the good file with a truncated one. Fix: compare write()'s result with the size and
    // cancelWriting() + return an error on a short write. Remove this line when fixed.
    QVERIFY2(!error.isEmpty(), "save() reported success on a full disk");
    QCOMPARE(read_all(store.path_of(id)), before);
    const auto loaded = store.load_all();
    QCOMPARE(loaded.problems.size(), 0);
    QCOMPARE(int(loaded.conversations.size()), 1);
    QCOMPARE(loaded.conversations[0].messages[0].content, QStringLiteral("first version"));
    // No temporary file left beside it.
    QCOMPARE(QDir(tmp.path()).entryList(QDir::Files).size(), 1);
  }

  // A read-only folder (as a non-root user would see it): the same outcome.
  void unwritable_folder_while_saving_keeps_previous_file() {
    if (::geteuid() == 0) QSKIP("root ignores folder permissions (covered by the disk-full case)");
    QTemporaryDir tmp;
    ui::ConversationStore store(tmp.path());
    QCOMPARE(store.save(conversation_with(QStringLiteral("c1"), QStringLiteral("first"))), QString());
    const QByteArray before = read_all(store.path_of(QStringLiteral("c1")));
    QFile::setPermissions(tmp.path(), QFile::ReadOwner | QFile::ExeOwner);
    const QString error = store.save(conversation_with(QStringLiteral("c1"), QStringLiteral("second")));
    QFile::setPermissions(tmp.path(), QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    QVERIFY(!error.isEmpty());
    QCOMPARE(read_all(store.path_of(QStringLiteral("c1"))), before);
  }

  // Killed in the middle of a save, many times at random moments: the file on disk is always a
  // complete conversation (the old or the new one), never a torn one.
  void killed_mid_save_leaves_a_complete_file() {
    QTemporaryDir tmp;
    ui::ConversationStore store(tmp.path());
    const QString id = QStringLiteral("c1");
    QCOMPARE(store.save(conversation_with(id, QStringLiteral("v0"))), QString());
    const QString big(256 * 1024, QLatin1Char('y'));
    for (int round = 0; round < 20; ++round) {
      const pid_t pid = ::fork();
      QVERIFY(pid >= 0);
      if (pid == 0) {
        for (int i = 1;; ++i) store.save(conversation_with(id, QStringLiteral("v%1 ").arg(i) + big));
      }
      ::usleep(useconds_t(2000 + 1500 * round));
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      const auto loaded = ui::ConversationStore(tmp.path()).load_all();
      QVERIFY2(loaded.problems.isEmpty(), qPrintable(loaded.problems.join(QLatin1Char('\n'))));
      QCOMPARE(int(loaded.conversations.size()), 1);
      QVERIFY(loaded.conversations[0].messages[0].content.startsWith(QLatin1Char('v')));
    }
  }
};

QTEST_GUILESS_MAIN(TestFaults)
#include "test_faults.moc"
