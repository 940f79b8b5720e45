// The RAII layer over SQLite: binding and reading every type, transactions that roll
// back unless committed, and errors that name the statement, the code and the file.
#include <QTest>

#include "moelens_storage/error.h"
#include "moelens_storage/sqlite.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using moelens::storage::test::TempDir;

class TestSqlite : public QObject {
    Q_OBJECT

private slots:
    void bindAndReadEveryType()
    {
        TempDir dir;
        Db db(dir.file("t.db"), Db::Mode::ReadWriteCreate);
        db.exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n)");
        const std::vector<std::uint8_t> blob = {0, 1, 2, 255};
        Statement insert = db.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)");
        insert.bind_all(std::int64_t{1} << 40, 2.5, std::string("na\0me", 5));
        insert.bind_blob(4, blob).bind_null(5).run();
        insert.reset();
        insert.bind_all(-1, 0.0, "");
        insert.bind_blob(4, {}).bind_null(5).run();
        QCOMPARE(db.last_insert_rowid(), std::int64_t{2});
        QCOMPARE(db.changes(), 1);

        Statement s = db.prepare("SELECT i, d, s, b, n, typeof(b) FROM t ORDER BY rowid");
        QVERIFY(s.step());
        QCOMPARE(s.column_int(0), std::int64_t{1} << 40);
        QCOMPARE(s.column_double(1), 2.5);
        QCOMPARE(s.column_text(2), std::string("na\0me", 5));  // embedded NUL kept
        QVERIFY(s.column_blob(3) == blob);
        QVERIFY(s.is_null(4));
        QVERIFY(s.step());
        QVERIFY(s.column_blob(3).empty());
        QCOMPARE(s.column_text(5), std::string("blob"));  // empty blob, not NULL
        QVERIFY(!s.step());
        try {
            s.column_int(9);
            QFAIL("no error");
        } catch (const StorageError& e) {
            QVERIFY(std::string(e.what()).find("column 9 out of range") != std::string::npos);
        }
    }

    void transactionsRollBackUnlessCommitted()
    {
        TempDir dir;
        Db db(dir.file("t.db"), Db::Mode::ReadWriteCreate);
        db.exec("CREATE TABLE t (x)");
        {
            Transaction tx(db);
            db.exec("INSERT INTO t VALUES (1)");
        }
        QCOMPARE(db.query_int("SELECT count(*) FROM t"), std::int64_t{0});
        try {
            Transaction tx(db);
            db.exec("INSERT INTO t VALUES (1)");
            db.exec("INSERT INTO nowhere VALUES (1)");
            tx.commit();
        } catch (const StorageError&) {
        }
        QCOMPARE(db.query_int("SELECT count(*) FROM t"), std::int64_t{0});
        {
            Transaction tx(db);
            db.exec("INSERT INTO t VALUES (1)");
            tx.commit();
        }
        QCOMPARE(db.query_int("SELECT count(*) FROM t"), std::int64_t{1});
    }

    void errorsCarryContext()
    {
        TempDir dir;
        const std::string path = dir.file("t.db");
        Db db(path, Db::Mode::ReadWriteCreate);
        db.exec("CREATE TABLE t (x UNIQUE)");
        db.exec("INSERT INTO t VALUES (1)");
        try {
            db.prepare("INSERT INTO t VALUES (1)").run();
            QFAIL("no error");
        } catch (const StorageError& e) {
            QCOMPARE(e.kind(), ErrorKind::Constraint);
            const std::string what = e.what();
            QVERIFY2(what.find("INSERT INTO t VALUES (1)") != std::string::npos, what.c_str());
            QVERIFY2(what.find("UNIQUE constraint failed: t.x") != std::string::npos, what.c_str());
            QVERIFY2(what.find(path) != std::string::npos, what.c_str());
        }
        try {
            db.prepare("SELEKT 1");
            QFAIL("no error");
        } catch (const StorageError& e) {
            QCOMPARE(e.kind(), ErrorKind::Sql);
            QVERIFY(std::string(e.what()).find("syntax error") != std::string::npos);
        }
        try {
            Db missing(dir.file("none/x.db"), Db::Mode::ReadOnly);
            QFAIL("no error");
        } catch (const StorageError& e) {
            QCOMPARE(e.kind(), ErrorKind::ReadOnly);  // SQLITE_CANTOPEN
            QVERIFY(std::string(e.what()).find("cannot open database") != std::string::npos);
        }
    }

    void pathsWithUriCharacters()
    {
        TempDir dir;
        const std::string path = dir.file("a?b#c%d.db");
        {
            Db db(path, Db::Mode::ReadWriteCreate);
            db.exec("CREATE TABLE t (x)");
        }
        QVERIFY(std::filesystem::exists(path));
        Db again(path, Db::Mode::ReadOnly);
        QVERIFY(again.read_only());
        QCOMPARE(again.query_int("SELECT count(*) FROM t"), std::int64_t{0});
    }
};

QTEST_GUILESS_MAIN(TestSqlite)
#include "test_sqlite.moc"
