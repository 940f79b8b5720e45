// Schema migrations: from every earlier version to the latest, with data written at
// that version; a failing migration leaves the database as it was.
#include <QTest>

#include "moelens_storage/migrations.h"
#include "moelens_storage/store.h"
#include "moelens_storage/trace_codec.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using moelens::storage::test::make_trace;
using moelens::storage::test::TempDir;

namespace {

std::string schema_of(Db& db)
{
    std::string out;
    Statement s = db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
    while (s.step()) out += s.column_text(0) + " " + s.column_text(1) + ": " + s.column_text(2) + "\n";
    return out;
}

// Rows as a database at `version` would hold them, written with that version's SQL.
void write_data_at(Db& db, int version)
{
    if (version >= 1) {
        db.exec("INSERT INTO chats (id, title, created_ms, updated_ms) VALUES (1, 'Old chat', 10, 20)");
        db.exec(
            "INSERT INTO messages (id, chat_id, parent_id, role, content, created_ms)"
            " VALUES (1, 1, NULL, 'user', 'what is a latent cache', 11)");
        db.exec(
            "INSERT INTO messages (id, chat_id, parent_id, role, content, created_ms)"
            " VALUES (2, 1, 1, 'assistant', 'it stores the compressed kv', 12)");
        db.exec("UPDATE chats SET current_leaf_id = 2 WHERE id = 1");
        db.exec(
            "INSERT INTO runs (id, message_id, model_path, model_fingerprint, sampling_json, tokens_in, tokens_out,"
            " prefill_tps, decode_tps, stop_reason, error, started_ms, finished_ms)"
            " VALUES (1, 2, 'lite', 'fp', '{\"temperature\":0}', 5, 6, 100.0, 10.0, 'eos', '', 11, 12)");
        const auto blob = encode_trace(make_trace(6));
        Statement s = db.prepare("INSERT INTO traces (run_id, format_version, n_tokens, data) VALUES (1, 1, 6, ?1)");
        s.bind_blob(1, blob);
        s.run();
        db.exec("INSERT INTO settings (key, type, value) VALUES ('ui.theme', 'string', 'dark')");
    }
    if (version >= 3)
        db.exec("INSERT INTO presets (name, sampling_json, created_ms, updated_ms) VALUES ('greedy', '{}', 1, 1)");
    if (version >= 4) {
        db.exec("INSERT INTO comparisons (id, chat_id, title, context_json, created_ms) VALUES (1, 1, 'cmp', '[]', 13)");
        db.exec(
            "INSERT INTO comparison_columns (comparison_id, position, label, sampling_json, moe_json)"
            " VALUES (1, 0, 'A', '{}', '{}')");
    }
}

}  // namespace

class TestMigrations : public QObject {
    Q_OBJECT

private slots:
    void versionsAreContiguous()
    {
        int expected = 1;
        for (const Migration& m : schema_migrations()) QCOMPARE(m.version, expected++);
        QCOMPARE(latest_schema_version(), expected - 1);
    }

    void fromEveryVersion_data()
    {
        QTest::addColumn<int>("from");
        for (int v = 0; v < latest_schema_version(); ++v) QTest::newRow(qPrintable(QString("v%1").arg(v))) << v;
    }
    void fromEveryVersion()
    {
        QFETCH(int, from);
        TempDir dir;
        std::string fresh_schema;
        {
            Store fresh = Store::open(dir.file("fresh.db"));
            fresh_schema = schema_of(fresh.db());
        }
        const std::string path = dir.file("old.db");
        {
            Db db(path, Db::Mode::ReadWriteCreate);
            migrate(db, from);
            QCOMPARE(db.query_int("PRAGMA user_version"), std::int64_t{from});
            write_data_at(db, from);
        }
        Store store = Store::open(path);
        QCOMPARE(store.open_report().schema_version_found, from);
        QCOMPARE(store.db().query_int("PRAGMA user_version"), std::int64_t{latest_schema_version()});
        QCOMPARE(schema_of(store.db()), fresh_schema);
        QCOMPARE(store.db().query_text("PRAGMA integrity_check"), std::string("ok"));
        QCOMPARE(store.db().query_int("SELECT count(*) FROM pragma_foreign_key_check"), std::int64_t{0});

        if (from >= 1) {
            const auto path_msgs = store.load_current_path(1);
            QCOMPARE(path_msgs.size(), std::size_t{2});
            QCOMPARE(path_msgs[1].content, std::string("it stores the compressed kv"));
            QCOMPARE(store.list_runs(2).size(), std::size_t{1});
            QCOMPARE(store.load_trace(1)->n_tokens(), std::size_t{6});
            QCOMPARE(store.get_string("ui.theme", ""), std::string("dark"));
            // Rows written before the search index existed are found.
            QCOMPARE(store.search("latent").size(), std::size_t{1});
        }
        if (from >= 3) QVERIFY(store.get_preset("greedy"));
        if (from >= 4) QCOMPARE(store.list_comparisons(1).size(), std::size_t{1});
        // Everything works at the latest version.
        const ChatId chat = store.create_chat({"New", "", ""});
        store.append_message(chat, Role::User, "fresh words");
        store.save_preset("after", "{}");
        QVERIFY(store.create_comparison({chat, "c", "[]", "", {{"A", "{}", "{}"}}}) > 0);
        QCOMPARE(store.search("fresh").size(), std::size_t{1});
    }

    void failingMigrationRollsBack()
    {
        TempDir dir;
        const Migration list[] = {
            {1, "first", "CREATE TABLE a (x);"},
            {2, "broken", "CREATE TABLE b (y); INSERT INTO no_such_table VALUES (1);"},
        };
        Db db(dir.file("m.db"), Db::Mode::ReadWriteCreate);
        try {
            migrate(db, 2, list);
            QFAIL("no error");
        } catch (const StorageError& e) {
            QVERIFY(std::string(e.what()).find("migration 2 (broken) failed") != std::string::npos);
        }
        QCOMPARE(db.query_int("PRAGMA user_version"), std::int64_t{1});
        QCOMPARE(db.query_int("SELECT count(*) FROM sqlite_master WHERE name = 'a'"), std::int64_t{1});
        QCOMPARE(db.query_int("SELECT count(*) FROM sqlite_master WHERE name = 'b'"), std::int64_t{0});
    }

    void newerDatabaseIsNotMigrated()
    {
        TempDir dir;
        Db db(dir.file("m.db"), Db::Mode::ReadWriteCreate);
        db.exec("PRAGMA user_version = 99");
        try {
            migrate(db, latest_schema_version());
            QFAIL("no error");
        } catch (const StorageError& e) {
            QCOMPARE(e.kind(), ErrorKind::NewerVersion);
        }
        QCOMPARE(db.query_int("PRAGMA user_version"), std::int64_t{99});
    }
};

QTEST_GUILESS_MAIN(TestMigrations)
#include "test_migrations.moc"
