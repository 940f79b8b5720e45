// moelens-bench: benchmarks of the engine, the tokenizer and the store (no Qt).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "args.h"
#include "commands.h"
#include "moelens/logging.h"
#include "moelens/version.h"

namespace moelens::bench {
// Defined in bench_*.cpp; add new benchmarks to kCommands below.
}

namespace {

using moelens::bench::Command;

const Command* const kCommands[] = {
    &moelens::bench::kTokenizerCommand,
    &moelens::bench::kStorageCommand,
    &moelens::bench::kMembwCommand,
    &moelens::bench::kModelCommand,
    &moelens::bench::kBatchCommand,
    &moelens::bench::kKernelsCommand,
};

void print_usage(std::FILE* out)
{
    std::fprintf(out, "usage: moelens-bench COMMAND [ARGS]\n       moelens-bench --version\n\ncommands:\n");
    for (const Command* c : kCommands)
        if (c) std::fprintf(out, "  %-12s %s\n      %s\n", c->name, c->usage, c->summary);
}

}  // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "--version") {
        std::printf("moelens-bench %s\n", MOELENS_VERSION);
        return 0;
    }
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        print_usage(args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    auto logger = spdlog::stderr_color_mt("moelens");
    logger->set_level(spdlog::level::warn);
    moelens::set_engine_logger(logger);

    const std::string name = args[0];
    args.erase(args.begin());
    for (const Command* c : kCommands) {
        if (!c || name != c->name) continue;
        try {
            return c->run(args);
        } catch (const moelens::cli::UsageError& e) {
            std::fprintf(stderr, "moelens-bench %s: %s\nusage: moelens-bench %s %s\n", c->name, e.what(), c->name, c->usage);
            return 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "moelens-bench %s: error: %s\n", c->name, e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "moelens-bench: unknown command '%s'\n", name.c_str());
    print_usage(stderr);
    return 2;
}
