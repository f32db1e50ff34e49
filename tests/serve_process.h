#pragma once
// Starts `moescope-cli serve … --port 0` in `p` and returns the free loopback port it printed
// ("… on http://127.0.0.1:PORT/v1 …"); fatal when it does not start. For test_serve and the
// remote-backend tests.
#include <QByteArray>
#include <QProcess>
#include <QStringList>
#include <QtGlobal>

namespace moescope::test {

inline int start_serve(QProcess& p, const QStringList& args) {
  p.setProcessChannelMode(QProcess::SeparateChannels);
  p.start(MOESCOPE_CLI, args);
  if (!p.waitForStarted(10000)) qFatal("serve did not start");
  QByteArray line;
  while (!line.contains('\n') && p.waitForReadyRead(60000)) line += p.readAllStandardOutput();
  const int colon = line.lastIndexOf(':'), slash = line.indexOf("/v1");
  const int port = line.mid(colon + 1, slash - colon - 1).toInt();
  if (port <= 0) qFatal("serve printed no port: %s / %s", line.constData(), p.readAllStandardError().constData());
  return port;
}

}  // namespace moescope::test
