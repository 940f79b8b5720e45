#pragma once
// Every moelens-cli subcommand: one file per command (cmd_<name>.cpp) defining one
// of these, listed once in main.cpp. A command returns the process exit code and
// reports errors by throwing (main prints them and returns non-zero).
#include <string>
#include <vector>

namespace moelens::cli {

struct Command {
    const char* name;
    const char* usage;    // one line: the arguments after the command name
    const char* summary;  // one line: what it does
    int (*run)(const std::vector<std::string>& args);
};

// Defined in cmd_*.cpp.
extern const Command kDevicesCommand;
extern const Command kInfoCommand;
extern const Command kForwardCommand;
extern const Command kMakeDemoCommand;
extern const Command kGenerateCommand;
extern const Command kTokenizeCommand;
extern const Command kDetokenizeCommand;
extern const Command kChatTemplateCommand;
extern const Command kPerplexityCommand;
extern const Command kExportCommand;
extern const Command kImportCommand;

}  // namespace moelens::cli
