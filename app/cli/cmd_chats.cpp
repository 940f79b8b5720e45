// moelens-cli export / import: the app's chat database from the command line, for
// backups and scripts. Both use the store's exchange functions, as the app's File
// menu does. Export opens the database read-only; neither command ever moves a
// damaged database aside (the app does that on start): they fail naming the file.
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "files.h"
#include "id_lists.h"
#include "moelens/error.h"
#include "moelens_storage/exchange.h"
#include "moelens_storage/store.h"

namespace moelens::cli {
namespace {

namespace fs = std::filesystem;
using storage::ChatId;

storage::Store open_store(const std::string& db, bool read_only)
{
    if (!fs::exists(db)) throw Error(db + ": no such database");
    storage::OpenOptions options;
    options.read_only = read_only;
    options.move_corrupt_aside = false;
    return storage::Store::open(db, options);
}

int run_export(const std::vector<std::string>& argv)
{
    const Args args(argv, {"db", "chats", "format", "out"}, {});
    const std::string format = args.get("format").value_or("json");
    if (format != "json" && format != "markdown") throw UsageError("--format: expected json or markdown, found '" + format + "'");
    std::vector<ChatId> chats;
    if (auto list = args.get("chats")) chats = parse_chat_id_list(*list);
    storage::Store store = open_store(args.require("db"), /*read_only=*/true);
    for (ChatId id : chats)
        if (!store.get_chat(id)) throw Error(args.require("db") + ": no chat with id " + std::to_string(id));
    const std::string text = format == "json" ? storage::export_json(store, chats) : storage::export_markdown(store, chats);
    if (auto out = args.get("out")) {
        write_file_replacing(*out, text);
    } else {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    }
    return 0;
}

int run_import(const std::vector<std::string>& argv)
{
    const Args args(argv, {"db", "in"}, {});
    const std::string in_path = args.require("in");
    const std::string json = read_file(in_path, "export");
    storage::Store store = open_store(args.require("db"), /*read_only=*/false);
    std::vector<ChatId> added;
    try {
        added = storage::import_json(store, json);
    } catch (const std::exception& e) {
        throw Error(in_path + ": " + e.what() + " (nothing was imported)");
    }
    const std::string out = nlohmann::json{{"imported", added}}.dump() + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

const Command kExportCommand = {"export", "--db FILE [--chats ID,ID...] [--format json|markdown] [--out FILE]",
                                "chats (default: all) as JSON (lossless, for import) or Markdown, to stdout or FILE",
                                run_export};
const Command kImportCommand = {"import", "--db FILE --in FILE.json",
                                "adds the chats of a JSON export as new chats, all or nothing; prints {\"imported\": [ids]}",
                                run_import};

}  // namespace moelens::cli
