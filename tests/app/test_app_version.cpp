// The executables report the version CMake configured, and the device probe explains
// its choice on this GPU-less machine instead of failing.
#include <QProcess>
#include <QtTest>

#include "moelens/version.h"

class TestAppVersion : public QObject {
    Q_OBJECT

private:
    static QString run(const QString& exe, const QStringList& args, int* exitCode)
    {
        QProcess p;
        p.setProgram(QStringLiteral(MOELENS_BIN_DIR) + "/" + exe);
        p.setArguments(args);
        p.start();
        if (!p.waitForFinished(60000)) qFatal("%s did not finish", qPrintable(exe));
        *exitCode = p.exitCode();
        return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
    }

private slots:
    void versionStrings_data()
    {
        QTest::addColumn<QString>("exe");
        QTest::newRow("cli") << "moelens-cli";
        QTest::newRow("bench") << "moelens-bench";
#ifdef MOELENS_HAVE_GUI
        QTest::newRow("gui") << "moelens";
#endif
    }

    void versionStrings()
    {
        QFETCH(QString, exe);
        int code = -1;
        const QString out = run(exe, {"--version"}, &code);
        QCOMPARE(code, 0);
        QCOMPARE(out, exe + " " + QStringLiteral(MOELENS_VERSION));
    }

    void unknownCommandFails()
    {
        int code = -1;
        run("moelens-cli", {"no-such-command"}, &code);
        QCOMPARE(code, 2);
    }

    void devicesExplainsChoice()
    {
        int code = -1;
        const QString out = run("moelens-cli", {"devices"}, &code);
        QCOMPARE(code, 0);
        QVERIFY2(out.contains("reason: "), qPrintable(out));
        QVERIFY2(out.contains("cpu: "), qPrintable(out));
    }
};

QTEST_GUILESS_MAIN(TestAppVersion)
#include "test_app_version.moc"
