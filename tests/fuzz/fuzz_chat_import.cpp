// A chat export from elsewhere (storage/src/import_json.cpp) imported into a
// store: all or nothing, never a crash. Every chat an import created must load
// back. The store file is per process, started afresh every 256 inputs.
#include <memory>

#include "fuzz_support.h"
#include "moelens_storage/error.h"
#include "moelens_storage/exchange.h"
#include "moelens_storage/store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace moelens::storage;
    static std::unique_ptr<Store> store;
    static int uses = 0;
    const auto path = moelens::fuzz::scratch_dir() / "import.sqlite3";
    if (!store || ++uses % 256 == 0) {
        store.reset();
        std::filesystem::remove(path);
        std::filesystem::remove(path.string() + "-wal");
        std::filesystem::remove(path.string() + "-shm");
        store = std::make_unique<Store>(Store::open(path.string()));
    }
    try {
        for (ChatId id : import_json(*store, moelens::fuzz::as_text(data, size))) {
            if (!store->get_chat(id)) __builtin_trap();
            (void)store->list_messages(id);
            (void)store->load_current_path(id);
        }
    } catch (const StorageError& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
