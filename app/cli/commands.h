#pragma once
// The moescope-cli subcommands; each lives in its own cmd_<name>.cpp and is listed in main.cpp.
namespace moescope::cli {
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);
int cmd_template(int argc, char** argv);
int cmd_forward(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_stats(int argc, char** argv);
int cmd_analyze(int argc, char** argv);
int cmd_compare(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_bench_serve(int argc, char** argv);
}  // namespace moescope::cli
