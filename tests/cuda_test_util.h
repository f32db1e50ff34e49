#pragma once
// GPU tests skip, with the reason, on machines without a usable CUDA device and in builds
// without CUDA; they never pass silently (CTest reports them as skipped).
#include <QtTest>
#include <string>

#include "moescope/backend.h"

#ifdef MOESCOPE_HAVE_CUDA
#define REQUIRE_CUDA()                                                                   \
  do {                                                                                   \
    std::string why_;                                                                    \
    if (!moescope::cuda_available(&why_)) QSKIP(qPrintable(QString("no CUDA device: ") + why_.c_str())); \
  } while (0)
#else
#define REQUIRE_CUDA() QSKIP("built without CUDA")
#endif
