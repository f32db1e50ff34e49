#pragma once
// A small test harness for the tests that must build without Qt: the GPU tests run on device
// machines that have the CUDA toolkit but no Qt (tools/gpu-check.sh builds them with
// MOESCOPE_BUILD_UI=OFF). Every other test is a Qt Test executable.
//
//   PT_CASE(name) { ... }            a test case, run in the order of definition
//   PT_ROW("label", [&] { ... });    one data row of the current case (a failure or skip ends
//                                    the row, not the case)
//   PT_CHECK(cond), PT_CHECK2(cond, message), PT_COMPARE(actual, expected), PT_FAIL(message),
//   PT_SKIP(reason)                  end the row (or the case) at the first failure / with a skip
//   PT_MAIN()                        main(): runs every case, or those whose name contains an
//                                    argument; exit status 1 when any row failed
//
// Output: "PASS", "FAIL" (with file:line and the values) or "SKIP" (with the reason) per row,
// and a totals line. CTest reads skips through SKIP_REGULAR_EXPRESSION (tests/CMakeLists.txt).
#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace plaintest {

struct Skipped {
  std::string why;
};
struct Failed {
  std::string what;
};

struct Totals {
  int passed = 0, failed = 0, skipped = 0;
};

inline std::vector<std::pair<std::string, std::function<void()>>>& registry() {
  static std::vector<std::pair<std::string, std::function<void()>>> cases;
  return cases;
}
inline Totals& totals() {
  static Totals t;
  return t;
}
inline std::string& current_case() {
  static std::string name;
  return name;
}
inline int& rows_in_case() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, std::function<void()> body) { registry().emplace_back(name, std::move(body)); }
};

// Test output (what QTest's qInfo printed): one line on stdout, flushed so it interleaves with
// the engine's spdlog lines.
template <class... A>
void info(fmt::format_string<A...> f, A&&... a) {
  std::fputs(("INFO   : " + current_case() + ": " + fmt::format(f, std::forward<A>(a)...) + "\n").c_str(), stdout);
  std::fflush(stdout);
}

[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  throw Failed{what + "\n   Loc: [" + file + "(" + std::to_string(line) + ")]"};
}

template <class X>
std::string show(const X& x) {
  if constexpr (requires { fmt::format("{}", x); }) return fmt::format("{}", x);
  else return "(value)";
}

// Runs one row (label set) or a whole case (label empty; a case whose body ran rows reports
// only its rows, unless it fails or skips outside them) and counts the outcome.
inline void run_one(const std::string& label, const std::function<void()>& body) {
  const std::string name = label.empty() ? current_case() : current_case() + "(" + label + ")";
  auto line = [&](const char* tag, const std::string& rest) {
    std::fputs((std::string(tag) + " : " + name + (rest.empty() ? "" : " " + rest) + "\n").c_str(), stdout);
    std::fflush(stdout);
  };
  try {
    body();
    if (label.empty() && rows_in_case() > 0) return;
    ++totals().passed;
    line("PASS  ", "");
  } catch (const Skipped& s) {
    ++totals().skipped;
    line("SKIP  ", s.why);
  } catch (const Failed& f) {
    ++totals().failed;
    line("FAIL! ", f.what);
  } catch (const std::exception& e) {
    ++totals().failed;
    line("FAIL! ", std::string("exception: ") + e.what());
  }
}

inline void row(const std::string& label, const std::function<void()>& body) {
  ++rows_in_case();
  run_one(label, body);
}

inline int run_all(int argc, char** argv) {
  std::vector<std::string> only(argv + 1, argv + argc);
  for (const auto& [name, body] : registry()) {
    if (!only.empty()) {
      bool wanted = false;
      for (const auto& o : only) wanted = wanted || name.find(o) != std::string::npos;
      if (!wanted) continue;
    }
    current_case() = name;
    rows_in_case() = 0;
    run_one("", body);
  }
  const Totals& t = totals();
  std::printf("Totals: %d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped);
  return t.failed ? 1 : 0;
}

}  // namespace plaintest

#define PT_CAT2(a, b) a##b
#define PT_CAT(a, b) PT_CAT2(a, b)
#define PT_CASE(name)                                                                          \
  static void PT_CAT(pt_case_, name)();                                                        \
  static const ::plaintest::Register PT_CAT(pt_register_, name)(#name, PT_CAT(pt_case_, name)); \
  static void PT_CAT(pt_case_, name)()
#define PT_ROW(label, ...) ::plaintest::row(label, __VA_ARGS__)
#define PT_CHECK(cond)                                                   \
  do {                                                                   \
    if (!(cond)) ::plaintest::fail(__FILE__, __LINE__, "'" #cond "' returned FALSE."); \
  } while (0)
#define PT_CHECK2(cond, message)                                                                    \
  do {                                                                                              \
    if (!(cond)) ::plaintest::fail(__FILE__, __LINE__, "'" #cond "' returned FALSE. (" + std::string(message) + ")"); \
  } while (0)
#define PT_COMPARE(actual, expected)                                                                   \
  do {                                                                                                 \
    const auto& pt_a_ = (actual);                                                                      \
    const auto& pt_e_ = (expected);                                                                    \
    if (!(pt_a_ == pt_e_))                                                                             \
      ::plaintest::fail(__FILE__, __LINE__,                                                            \
                        "Compared values are not the same\n   Actual   (" #actual "): " +              \
                            ::plaintest::show(pt_a_) + "\n   Expected (" #expected "): " + ::plaintest::show(pt_e_)); \
  } while (0)
#define PT_FAIL(message) ::plaintest::fail(__FILE__, __LINE__, std::string(message))
#define PT_SKIP(reason) throw ::plaintest::Skipped{std::string(reason)}
#define PT_MAIN() \
  int main(int argc, char** argv) { return ::plaintest::run_all(argc, argv); }
