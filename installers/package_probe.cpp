// moelens-package-probe: puts a user's chat into a profile database as an older
// MoE Lens wrote it, and checks it after a package upgrade (installers/package-test).
// Not installed; built only for the test.
//
//   moelens-package-probe seed-v1 DB           write a schema-version-1 database holding one chat
//   moelens-package-probe check DB [--migrated]
//       exit 0 when that chat, its messages and their search index entry are intact;
//       with --migrated, also require that the database was already at the latest
//       schema when the probe opened it (i.e. the installed app migrated it).
//
// Both test packages are built from the same tree, so "the previous version's
// profile" is made here: schema 1 is frozen history (migrations never change), and
// the chat is written with version 1's tables exactly as that version did.
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "moelens_storage/migrations.h"
#include "moelens_storage/sqlite.h"
#include "moelens_storage/store.h"

namespace {

namespace st = moelens::storage;

constexpr const char* kTitle = "Package upgrade probe";
constexpr const char* kQuestion = "Which experts fire for the word 'lens'?";
constexpr const char* kAnswer = "Experts 3 and 11 in most layers.";

// Version 1's chats and messages tables (storage/src/migrations.cpp, kV1Core).
constexpr const char* kInsertChatV1 = R"sql(
INSERT INTO chats (id, title, model, created_ms, updated_ms) VALUES (1, ?1, 'demo', 1767225600000, 1767225660000);
)sql";
constexpr const char* kInsertMessageV1 = R"sql(
INSERT INTO messages (id, chat_id, parent_id, role, content, created_ms) VALUES (?1, 1, ?2, ?3, ?4, ?5);
)sql";
constexpr const char* kSetLeafV1 = "UPDATE chats SET current_leaf_id = 2 WHERE id = 1;";

int seed_v1(const std::string& path)
{
    if (std::filesystem::exists(path)) {
        std::fprintf(stderr, "moelens-package-probe seed-v1: %s exists; remove it first\n", path.c_str());
        return 1;
    }
    st::Db db(path, st::Db::Mode::ReadWriteCreate);
    st::migrate(db, 1);
    db.prepare(kInsertChatV1).bind(1, kTitle).step();
    db.prepare(kInsertMessageV1).bind(1, 1).bind_null(2).bind(3, "user").bind(4, kQuestion).bind(5, 1767225600000).step();
    db.prepare(kInsertMessageV1).bind(1, 2).bind(2, 1).bind(3, "assistant").bind(4, kAnswer).bind(5, 1767225660000).step();
    db.exec(kSetLeafV1);
    std::printf("seeded a schema-1 database with chat '%s' at %s\n", kTitle, path.c_str());
    return 0;
}

int check(const std::string& path, bool require_migrated)
{
    st::OpenOptions options;
    options.move_corrupt_aside = false;  // a damaged file must fail the test, not be replaced
    st::Store store = st::Store::open(path, options);
    const int found = store.open_report().schema_version_found;
    if (require_migrated && found != st::latest_schema_version()) {
        std::fprintf(stderr, "%s was at schema version %d, expected the app to have migrated it to %d\n",
                     path.c_str(), found, st::latest_schema_version());
        return 1;
    }
    for (const st::Chat& chat : store.list_chats({.include_archived = true})) {
        if (chat.title != kTitle) continue;
        const std::vector<st::Message> messages = store.load_current_path(chat.id);
        if (messages.size() != 2 || messages[0].content != kQuestion || messages[1].content != kAnswer) {
            std::fprintf(stderr, "chat '%s' in %s: expected 2 messages ('%s', '%s'), found %zu\n", kTitle,
                         path.c_str(), kQuestion, kAnswer, messages.size());
            return 1;
        }
        // The search index came with a later schema version; the migration must have
        // indexed the messages that were already there.
        if (store.search("experts lens").empty()) {
            std::fprintf(stderr, "search for 'experts lens' in %s finds nothing after the migration\n", path.c_str());
            return 1;
        }
        std::printf("chat '%s' intact and searchable in %s (schema version %d on open, latest %d)\n", kTitle,
                    path.c_str(), found, st::latest_schema_version());
        return 0;
    }
    std::fprintf(stderr, "chat '%s' not found in %s\n", kTitle, path.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv)
{
    const bool migrated = argc == 4 && std::strcmp(argv[3], "--migrated") == 0;
    if (argc != 3 && !migrated) {
        std::fprintf(stderr, "usage: moelens-package-probe seed-v1 DATABASE\n"
                             "       moelens-package-probe check DATABASE [--migrated]\n");
        return 2;
    }
    const std::string action = argv[1];
    try {
        if (action == "seed-v1" && !migrated) return seed_v1(argv[2]);
        if (action == "check") return check(argv[2], migrated);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moelens-package-probe %s %s: %s\n", action.c_str(), argv[2], e.what());
        return 1;
    }
    std::fprintf(stderr, "moelens-package-probe: unknown action '%s' (seed-v1 or check)\n", action.c_str());
    return 2;
}
