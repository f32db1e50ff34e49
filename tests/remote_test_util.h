#pragma once
// Servers for the remote-backend tests (test_remote_client, test_app): `moescope-cli serve` on a
// free loopback port, and a scripted HTTP/1.1 server on a loopback QTcpServer that plays the wire
// shapes vLLM and SGLang document (tests/data/remote/*), cuts them, or never answers.
#include <QFile>
#include <QProcess>
#include <QSslCertificate>
#include <QSslConfiguration>
#include <QSslKey>
#include <QSslServer>
#include <QString>
#include <QTcpServer>
#include <QTcpSocket>

#include <filesystem>
#include <memory>
#include <fstream>
#include <sstream>
#include <string>

#include "serve_process.h"

namespace moescope::test {

namespace fs = std::filesystem;

const QString kServeModel = QString::fromStdString((fs::path(MOESCOPE_SOURCE_DIR) / "resources/models/moescope-tiny").string());
inline constexpr const char* kKey = "remote-test-key";

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// moescope-cli serve on a free port; killed at the end (or by a test).
class Serve {
public:
  explicit Serve(const QStringList& extra = {})
      : port_(start_serve(p_, QStringList{"serve", "--model", kServeModel, "--port", "0", "--api-key", kKey} + extra)) {}
  ~Serve() { kill(); }
  void kill() {
    if (p_.state() == QProcess::NotRunning) return;
    p_.kill();
    p_.waitForFinished(10000);
  }
  QString url() const { return QStringLiteral("http://127.0.0.1:%1").arg(port_); }

private:
  QProcess p_;
  int port_ = 0;
};

// A self-signed certificate for 127.0.0.1 (also as its IP subject-alternative name) made with the
// openssl command into `dir`: the TLS configuration of a server that presents it. False when
// openssl is missing or fails.
inline bool self_signed_config(const QString& dir, QSslConfiguration* config, QSslCertificate* certificate = nullptr) {
  const QString key = dir + QStringLiteral("/tls.key"), crt = dir + QStringLiteral("/tls.crt");
  QProcess p;
  p.start(QStringLiteral("openssl"), {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1",
                                      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  if (!p.waitForFinished(30000) || p.exitCode() != 0) return false;
  QFile kf(key), cf(crt);
  if (!kf.open(QIODevice::ReadOnly) || !cf.open(QIODevice::ReadOnly)) return false;
  const QSslCertificate cert(cf.readAll());
  QSslConfiguration c = QSslConfiguration::defaultConfiguration();
  c.setPrivateKey(QSslKey(kf.readAll(), QSsl::Rsa));
  c.setLocalCertificate(cert);
  *config = c;
  if (certificate) *certificate = cert;
  return !cert.isNull();
}

// `server` presenting a self-signed certificate, listening on a free loopback port.
inline bool self_signed(QSslServer& server, const QString& dir) {
  QSslConfiguration c;
  if (!self_signed_config(dir, &c)) return false;
  server.setSslConfiguration(c);
  return server.listen(QHostAddress::LocalHost, 0);
}

// A scripted HTTP/1.1 server: GET /v1/models answers `models`; a POST answers `answer` (status
// line, headers and body as given), optionally cut after `cut` bytes, or never (`hang`).
class Scripted : public QObject {
public:
  QByteArray models = "{\"object\":\"list\",\"data\":[{\"id\":\"Qwen/Qwen3-30B-A3B\",\"object\":\"model\",\"max_model_len\":40960}]}";
  QByteArray answer;
  qsizetype cut = -1;
  bool hang = false;
  bool hang_models = false;
  QByteArray last_request;

  // tls_dir non-empty: HTTPS with a self-signed certificate made there (certificate() is it).
  explicit Scripted(const QString& tls_dir = {}) {
    if (!tls_dir.isEmpty()) {
      auto tls = std::make_unique<QSslServer>();
      QSslConfiguration c;
      if (!self_signed_config(tls_dir, &c, &certificate_)) return;
      tls->setSslConfiguration(c);
      server_ = std::move(tls);
    } else {
      server_ = std::make_unique<QTcpServer>();
    }
    server_->listen(QHostAddress::LocalHost, 0);
    // After the TLS handshake for QSslServer, at once for a plain server.
    connect(server_.get(), &QTcpServer::pendingConnectionAvailable, this, [this] {
      while (QTcpSocket* s = server_->nextPendingConnection()) {
        auto* buf = new QByteArray;
        connect(s, &QTcpSocket::readyRead, this, [this, s, buf] {
          *buf += s->readAll();
          const qsizetype head = buf->indexOf("\r\n\r\n");
          if (head < 0) return;
          const QByteArray h = buf->left(head);
          qsizetype length = 0;
          for (const QByteArray& line : h.split('\n'))
            if (line.toLower().startsWith("content-length:")) length = line.mid(15).trimmed().toLongLong();
          if (buf->size() < head + 4 + length) return;
          last_request = *buf;
          const bool is_models = h.startsWith("GET /v1/models");
          buf->clear();
          if ((is_models && hang_models) || (!is_models && hang)) return;  // say nothing, keep the socket open
          const QByteArray reply = is_models ? json_response(models) : (cut >= 0 ? answer.left(cut) : answer);
          s->write(reply);
          s->flush();
          if (!is_models || cut >= 0) s->disconnectFromHost();
        });
        connect(s, &QTcpSocket::disconnected, s, [s, buf] {
          delete buf;
          s->deleteLater();
        });
      }
    });
  }
  bool listening() const { return server_ && server_->isListening(); }
  const QSslCertificate& certificate() const { return certificate_; }
  QString url() const {
    return QStringLiteral("%1://127.0.0.1:%2").arg(certificate_.isNull() ? "http" : "https").arg(server_ ? server_->serverPort() : 0);
  }

  static QByteArray json_response(const QByteArray& body, int status = 200, const QByteArray& reason = "OK") {
    return "HTTP/1.1 " + QByteArray::number(status) + " " + reason + "\r\nContent-Type: application/json\r\nContent-Length: " +
           QByteArray::number(body.size()) + "\r\nConnection: keep-alive\r\n\r\n" + body;
  }
  static QByteArray sse_response(const QByteArray& events) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n" + events;
  }

private:
  std::unique_ptr<QTcpServer> server_;
  QSslCertificate certificate_;
};

}  // namespace moescope::test
