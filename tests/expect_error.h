#pragma once
// Expects `f` to throw a moescope::Error whose message is one line containing `needle` (Qt Test).
#include <QtTest>

#include <string>

#include "moescope/error.h"

namespace moescope::test {

template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    QVERIFY2(msg.find(needle) != std::string::npos, qPrintable(QString::fromStdString("unexpected message: " + msg)));
    QVERIFY2(msg.find('\n') == std::string::npos, "message must be one line");
    return;
  }
  QFAIL(qPrintable(QString::fromStdString("no error; expected one containing: " + needle)));
}

}  // namespace moescope::test
