// Opening a database that is damaged, from a newer version, locked by another
// instance, read-only, or on a full disk: a clear message and a safe path, never a
// silent loss.
#include <QTest>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "moelens_storage/migrations.h"
#include "moelens_storage/store.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using moelens::storage::test::read_file;
using moelens::storage::test::TempDir;

namespace {

void write_file(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

bool contains(const std::string& text, const std::string& needle)
{
    return text.find(needle) != std::string::npos;
}

// A database with one chat of `n` messages, closed cleanly (WAL checkpointed away).
ChatId make_db(const std::string& path, int n = 3)
{
    Store store = Store::open(path);
    const ChatId chat = store.create_chat({"Kept", "", ""});
    for (int i = 0; i < n; ++i) store.append_message(chat, Role::User, "message " + std::to_string(i));
    return chat;
}

template <typename F>
StorageError error_of(F&& f)
{
    try {
        f();
    } catch (const StorageError& e) {
        return e;
    }
    throw std::runtime_error("expected a StorageError");
}

// Permission checks do not apply to root, and tests may run as root (containers, CI):
// then `body` runs in a child process that has dropped to user nobody. It returns 0
// on success or the failing line; failures are printed by the child.
#define CHILD_CHECK(cond)                                                                 \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            return __LINE__;                                                              \
        }                                                                                 \
    } while (0)

int run_unprivileged(const std::function<int()>& body)
{
    if (::geteuid() != 0) return body();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        int code = 1;
        if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
            try {
                code = body();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child: unexpected exception: %s\n", e.what());
                code = 2;
            }
        } else {
            std::fprintf(stderr, "child: cannot drop to user nobody\n");
        }
        std::fflush(nullptr);
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

class TestOpenPaths : public QObject {
    Q_OBJECT

private slots:
    void garbageFileIsMovedAsideAndKept()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        std::string garbage;
        for (int i = 0; i < 200; ++i) garbage += "this is not a database, but it is the user's file. ";
        write_file(path, garbage);

        Store store = Store::open(path);
        const OpenReport& report = store.open_report();
        QVERIFY(!report.corrupt_copy_path.empty());
        QCOMPARE(read_file(report.corrupt_copy_path), garbage);  // kept byte for byte
        QVERIFY2(contains(report.message, "damaged") && contains(report.message, report.corrupt_copy_path),
                 report.message.c_str());
        QVERIFY(!store.read_only());
        QVERIFY(store.list_chats().empty());
        store.create_chat({"Fresh start", "", ""});
    }

    void damagedPagesAreDetected()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        make_db(path, 200);
        std::string bytes = read_file(path);
        QVERIFY(bytes.size() > 8 * 4096);
        // Scribble over every page after the first (the header page stays valid, so
        // only the page check finds the damage).
        for (std::size_t off = 4096; off < bytes.size(); off += 4096)
            bytes.replace(off, 16, "\xff\xfe\xfd\xfc scribbled!!");
        write_file(path, bytes);

        OpenOptions keep;
        keep.check = OpenOptions::Check::Always;
        keep.move_corrupt_aside = false;
        const std::string wal = "not checkpointed into the damaged file";
        write_file(path + "-wal", wal);
        const StorageError e = error_of([&] { Store::open(path, keep); });
        QCOMPARE(e.kind(), ErrorKind::Corrupt);
        QVERIFY2(contains(e.what(), path), e.what());
        QCOMPARE(read_file(path), bytes);  // refused, untouched
        QCOMPARE(read_file(path + "-wal"), wal);
        std::filesystem::remove(path + "-wal");

        // A -wal left behind (a crash) makes the default open check every page.
        write_file(path + "-wal", "");
        Store store = Store::open(path);
        QVERIFY(store.open_report().fully_checked);
        QCOMPARE(read_file(store.open_report().corrupt_copy_path), bytes);
        QVERIFY(std::filesystem::exists(store.open_report().corrupt_copy_path + "-wal"));
        QCOMPARE(store.db().query_text("PRAGMA integrity_check"), std::string("ok"));

        // A read-only open cannot move anything: it reports.
        write_file(path + ".2", bytes);
        OpenOptions reader;
        reader.read_only = true;
        reader.check = OpenOptions::Check::Always;
        QCOMPARE(error_of([&] { Store::open(path + ".2", reader); }).kind(), ErrorKind::Corrupt);
    }

    void newerVersionOpensReadOnly()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        const ChatId chat = make_db(path);
        const int newer = latest_schema_version() + 1;
        {
            Db db(path, Db::Mode::ReadWrite);
            db.exec("PRAGMA user_version = " + std::to_string(newer));
        }
        const std::string before = read_file(path);
        {
            Store store = Store::open(path);
            QVERIFY(store.read_only());
            QCOMPARE(store.open_report().read_only_reason, std::optional<ErrorKind>(ErrorKind::NewerVersion));
            QCOMPARE(store.open_report().schema_version_found, newer);
            const std::string& msg = store.open_report().message;
            QVERIFY2(contains(msg, "newer version of MoE Lens") && contains(msg, "read-only"), msg.c_str());
            QCOMPARE(store.load_current_path(chat).size(), std::size_t{3});  // still readable
            const StorageError e = error_of([&] { store.append_message(chat, Role::User, "lost?"); });
            QCOMPARE(e.kind(), ErrorKind::NewerVersion);
            QVERIFY2(contains(e.what(), "cannot save a message"), e.what());
        }
        QCOMPARE(read_file(path), before);
    }

    void secondInstanceIsReadOnly()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        const ChatId chat = make_db(path);
        {
            Store first = Store::open(path);
            Store second = Store::open(path);
            QVERIFY(!first.read_only());
            QVERIFY(second.read_only());
            QCOMPARE(second.open_report().read_only_reason, std::optional<ErrorKind>(ErrorKind::Locked));
            QVERIFY(!second.open_report().fully_checked);  // the live WAL is no sign of a crash
            const std::string& msg = second.open_report().message;
            QVERIFY2(contains(msg, "in use by another running MoE Lens (process " + std::to_string(::getpid()) + ")"),
                     msg.c_str());
            QCOMPARE(error_of([&] { second.append_message(chat, Role::User, "x"); }).kind(), ErrorKind::Locked);
            first.append_message(chat, Role::User, "from the first");
            QCOMPARE(second.load_current_path(chat).size(), std::size_t{4});
        }
        // Once the first instance is gone, the next one writes.
        Store again = Store::open(path);
        QVERIFY(!again.read_only());
    }

    void readOnlyFile()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        const ChatId chat = make_db(path);
        std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
        std::filesystem::remove(path + ".lock");  // root's; the unprivileged instance makes its own
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::group_read |
                                               std::filesystem::perms::others_read);
        const std::string before = read_file(path);
        const int failed_line = run_unprivileged([&]() -> int {
            Store store = Store::open(path);
            CHILD_CHECK(store.read_only());
            CHILD_CHECK(store.open_report().read_only_reason == ErrorKind::ReadOnly);
            CHILD_CHECK(store.open_report().message.rfind(path + " is not writable; opened read-only", 0) == 0);
            CHILD_CHECK(store.load_current_path(chat).size() == 3);
            CHILD_CHECK(error_of([&] { store.create_chat({}); }).kind() == ErrorKind::ReadOnly);
            return 0;
        });
        QCOMPARE(failed_line, 0);
        QCOMPARE(read_file(path), before);
    }

    void readOnlyFolder()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        const ChatId chat = make_db(path);
        QVERIFY(!std::filesystem::exists(path + "-shm"));  // the hard case: WAL without -shm
        std::filesystem::permissions(dir.path(),
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec |
                                         std::filesystem::perms::group_read | std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_read | std::filesystem::perms::others_exec);
        const std::string before = read_file(path);
        const int failed_line = run_unprivileged([&]() -> int {
            {
                Store store = Store::open(path);
                CHILD_CHECK(store.read_only());
                CHILD_CHECK(store.open_report().read_only_reason == ErrorKind::ReadOnly);
                CHILD_CHECK(contains(store.open_report().message, "the folder of " + path + " is not writable"));
                CHILD_CHECK(store.load_current_path(chat).size() == 3);
            }
            const StorageError e = error_of([&] { Store::open(dir.file("new.db")); });
            CHILD_CHECK(e.kind() == ErrorKind::ReadOnly);
            CHILD_CHECK(contains(e.what(), "cannot create database"));
            return 0;
        });
        QCOMPARE(failed_line, 0);
        QCOMPARE(read_file(path), before);
    }

    void missingFolder()
    {
        TempDir dir;
        const StorageError e = error_of([&] { Store::open(dir.file("no/such/folder/chats.db")); });
        QCOMPARE(e.kind(), ErrorKind::Io);
        QVERIFY2(contains(e.what(), "the folder does not exist"), e.what());
    }

    void diskFull()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        Store store = Store::open(path);
        const ChatId chat = store.create_chat({"Full", "", ""});
        const MessageId question = store.append_message(chat, Role::User, "before the disk filled up");
        const MessageId reply = store.begin_reply(chat, question);
        store.append_reply_text(reply, "saved part. ");

        // Simulate a full disk: the file may not grow past its current size.
        Db& db = store.db();
        const std::int64_t pages = db.query_int("PRAGMA page_count");
        db.query_int("PRAGMA max_page_count = " + std::to_string(pages + 1));
        const std::string big(512 * 1024, 'x');
        StorageError e = error_of([&] { store.append_reply_text(reply, big); });
        QCOMPARE(e.kind(), ErrorKind::DiskFull);
        QVERIFY2(contains(e.what(), "full"), e.what());
        e = error_of([&] { store.append_message(chat, Role::User, big); });
        QCOMPARE(e.kind(), ErrorKind::DiskFull);

        // Nothing committed was lost, the failed writes left no trace, and the store
        // keeps working once space is back.
        QCOMPARE(store.get_message(reply)->content, std::string("saved part. "));
        QCOMPARE(store.load_current_path(chat).size(), std::size_t{2});
        db.query_int("PRAGMA max_page_count = 1073741823");
        store.append_reply_text(reply, big);
        store.finish_reply(reply, "done", MessageState::Complete, RunRecord{});
        QCOMPARE(db.query_text("PRAGMA integrity_check"), std::string("ok"));
    }
};

QTEST_GUILESS_MAIN(TestOpenPaths)
#include "test_open_paths.moc"
