// moelens-cli: the engine and the store from the command line, no Qt Widgets.
// Also the conformance tool other programs call (forward, tokenize, ...), so its
// flags and output layouts are a stable interface: extend, never rename.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "args.h"
#include "commands.h"
#include "moelens/error.h"
#include "moelens/logging.h"
#include "moelens/version.h"

namespace {

using moelens::cli::Command;

const Command* const kCommands[] = {
    &moelens::cli::kDevicesCommand,
    &moelens::cli::kInfoCommand,
    &moelens::cli::kForwardCommand,
    &moelens::cli::kMakeDemoCommand,
    &moelens::cli::kGenerateCommand,
    &moelens::cli::kTokenizeCommand,
    &moelens::cli::kDetokenizeCommand,
    &moelens::cli::kChatTemplateCommand,
    &moelens::cli::kPerplexityCommand,
    &moelens::cli::kExportCommand,
    &moelens::cli::kImportCommand,
};

void print_usage(std::FILE* out)
{
    std::fprintf(out, "usage: moelens-cli [--log-level LEVEL] COMMAND [ARGS]\n       moelens-cli --version\n\ncommands:\n");
    for (const Command* c : kCommands) std::fprintf(out, "  %-14s %s\n      %s\n", c->name, c->usage, c->summary);
}

}  // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string level = "warn";
    while (!args.empty() && args[0].rfind("--", 0) == 0) {
        if (args[0] == "--version") {
            std::printf("moelens-cli %s\n", MOELENS_VERSION);
            return 0;
        }
        if (args[0] == "--help" || args[0] == "-h") {
            print_usage(stdout);
            return 0;
        }
        if (args[0] == "--log-level" && args.size() >= 2) {
            level = args[1];
            args.erase(args.begin(), args.begin() + 2);
            continue;
        }
        std::fprintf(stderr, "moelens-cli: unknown option %s\n", args[0].c_str());
        return 2;
    }
    if (args.empty()) {
        print_usage(stderr);
        return 2;
    }

    // Logs go to stderr so that stdout stays machine-readable.
    auto logger = spdlog::stderr_color_mt("moelens");
    logger->set_level(spdlog::level::from_str(level));
    moelens::set_engine_logger(logger);

    const std::string name = args[0];
    args.erase(args.begin());
    for (const Command* c : kCommands) {
        if (name != c->name) continue;
        try {
            return c->run(args);
        } catch (const moelens::cli::UsageError& e) {
            std::fprintf(stderr, "moelens-cli %s: %s\nusage: moelens-cli %s %s\n", c->name, e.what(), c->name, c->usage);
            return 2;
        } catch (const std::exception& e) {
            logger->error("{}: {}", c->name, e.what());
            std::fprintf(stderr, "moelens-cli %s: error: %s\n", c->name, e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "moelens-cli: unknown command '%s'\n", name.c_str());
    print_usage(stderr);
    return 2;
}
