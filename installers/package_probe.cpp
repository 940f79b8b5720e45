// moelens-package-probe: puts a user's chat into a profile database and checks it
// later, for the package upgrade test (installers/package-test). It goes through the
// storage library's public API, as the app does, so "the chat survived" means the
// app would show it. Not installed; built only for the test.
//
//   moelens-package-probe seed  DB  write a chat with two messages
//   moelens-package-probe check DB  exit 0 when that chat and its messages are intact
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "moelens_storage/migrations.h"
#include "moelens_storage/store.h"

namespace {

namespace st = moelens::storage;

constexpr const char* kTitle = "Package upgrade probe";
constexpr const char* kQuestion = "Which experts fire for the word 'lens'?";
constexpr const char* kNote = "Kept across a package upgrade.";

int seed(const std::string& path)
{
    st::Store store = st::Store::open(path);
    const st::ChatId chat = store.create_chat(st::NewChat{kTitle, "demo", ""});
    store.append_message(chat, st::Role::User, kQuestion);
    store.append_message(chat, st::Role::User, kNote);
    store.checkpoint();
    std::printf("seeded chat %lld in %s\n", static_cast<long long>(chat), path.c_str());
    return 0;
}

int check(const std::string& path)
{
    st::OpenOptions options;
    options.move_corrupt_aside = false;  // a damaged file must fail the test, not be replaced
    st::Store store = st::Store::open(path, options);
    if (!store.open_report().message.empty())
        std::fprintf(stderr, "open report for %s: %s\n", path.c_str(), store.open_report().message.c_str());
    for (const st::Chat& chat : store.list_chats({.include_archived = true})) {
        if (chat.title != kTitle) continue;
        const std::vector<st::Message> path_messages = store.load_current_path(chat.id);
        if (path_messages.size() != 2 || path_messages[0].content != kQuestion || path_messages[1].content != kNote) {
            std::fprintf(stderr, "chat '%s' in %s: expected 2 messages ('%s', '%s'), found %zu\n", kTitle,
                         path.c_str(), kQuestion, kNote, path_messages.size());
            return 1;
        }
        std::printf("chat '%s' intact in %s (schema version on open %d, now %d)\n", kTitle, path.c_str(),
                    store.open_report().schema_version_found, st::latest_schema_version());
        return 0;
    }
    std::fprintf(stderr, "chat '%s' not found in %s\n", kTitle, path.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: moelens-package-probe seed|check DATABASE\n");
        return 2;
    }
    const std::string action = argv[1];
    try {
        if (action == "seed") return seed(argv[2]);
        if (action == "check") return check(argv[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moelens-package-probe %s %s: %s\n", action.c_str(), argv[2], e.what());
        return 1;
    }
    std::fprintf(stderr, "moelens-package-probe: unknown action '%s' (seed or check)\n", action.c_str());
    return 2;
}
