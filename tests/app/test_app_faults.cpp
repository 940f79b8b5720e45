// The desktop app started on a bad day: its log folder unusable, its database
// replaced by garbage since the last run. It must start, say what happened and
// keep what it found (docs/reliability.md).
#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

namespace {

struct AppRun {
    int code = -1;  // -1: crashed or hung
    QString err;
};

AppRun run_app(const QString& dataDir)
{
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("QT_QPA_PLATFORM", "offscreen");
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(MOELENS_BIN_DIR "/moelens"), {"--data-dir", dataDir, "--quit-after", "2500"});
    if (!p.waitForFinished(60000)) {
        p.kill();
        p.waitForFinished();
        return {};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardError())};
}

void write(const QString& path, const QByteArray& bytes)
{
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(bytes);
}

}  // namespace

class TestAppFaults : public QObject {
    Q_OBJECT

private slots:
    // "logs" is a file where the folder should be (no folder can be made there,
    // not even by root): the app logs to the console and says so.
    void logFolderUnusable()
    {
        QTemporaryDir dir;
        write(dir.filePath("logs"), "not a folder");
        const AppRun r = run_app(dir.path());
        QVERIFY2(r.code == 0, qPrintable(r.err.right(600)));
        QVERIFY2(r.err.contains("logging to the console only"), qPrintable(r.err.right(600)));
    }

    // The database replaced by garbage between runs: set aside (not deleted), a
    // fresh one started, and the user told where the old one went.
    void databaseReplacedByGarbage()
    {
        QTemporaryDir dir;
        QVERIFY(run_app(dir.path()).code == 0);  // a first run creates the database
        const QByteArray garbage(64 * 1024, '\x5a');
        write(dir.filePath("moelens.sqlite3"), garbage);
        QFile::remove(dir.filePath("moelens.sqlite3-wal"));
        const AppRun r = run_app(dir.path());
        QVERIFY2(r.code == 0, qPrintable(r.err.right(600)));
        const QStringList aside = QDir(dir.path()).entryList({"moelens.sqlite3.corrupt-*"});
        QCOMPARE(aside.size(), 1);
        QFile kept(dir.filePath(aside.front()));
        QVERIFY(kept.open(QIODevice::ReadOnly));
        QCOMPARE(kept.readAll(), garbage);
        QVERIFY2(r.err.contains(aside.front()), qPrintable(r.err.right(600)));
    }
};

QTEST_GUILESS_MAIN(TestAppFaults)
#include "test_app_faults.moc"
