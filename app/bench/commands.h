#pragma once
// moelens-bench subcommands: one file per benchmark (bench_<name>.cpp), listed once
// in main.cpp. Benchmarks print medians and spreads, and ratios against a baseline
// measured in the same run (see docs/benchmarks.md).
#include <string>
#include <vector>

namespace moelens::bench {

struct Command {
    const char* name;
    const char* usage;
    const char* summary;
    int (*run)(const std::vector<std::string>& args);
};

// Defined in bench_*.cpp.
extern const Command kTokenizerCommand;
extern const Command kStorageCommand;
extern const Command kMembwCommand;
extern const Command kModelCommand;
extern const Command kBatchCommand;
extern const Command kKernelsCommand;

}  // namespace moelens::bench
