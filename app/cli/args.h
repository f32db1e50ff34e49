#pragma once
// A small command-line parser shared by the moescope-cli subcommands: `--name value` options,
// `--flag` switches (declared up front so a value is never mistaken for one), nothing positional.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace moescope::cli {

class Args {
public:
  // Parses argv[first..argc). `flags` names the switches that take no value; `options` the
  // ones that do. Anything else is an error naming the unknown argument.
  Args(int argc, char** argv, int first, const std::set<std::string>& flags,
       const std::set<std::string>& options);

  bool has(const std::string& name) const;
  std::optional<std::string> get(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;          // error if missing
  long long get_int(const std::string& name, long long fallback) const;
  double get_double(const std::string& name, double fallback) const;
  // "1,2,3" -> {1,2,3}; error on anything that is not an integer list.
  std::vector<int> get_int_list(const std::string& name) const;

private:
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_;
};

// Signature of every subcommand: returns the process exit status; throws moescope::Error for bad
// input (main prints it as one line on stderr and exits with status 1).
using Command = int (*)(int argc, char** argv);

}  // namespace moescope::cli
