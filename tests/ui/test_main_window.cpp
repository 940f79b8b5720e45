// The main window opens offscreen with its docks, closes cleanly, and restores the
// dock layout it saved on the next start.
#include <QDockWidget>
#include <QMenuBar>
#include <QTemporaryDir>
#include <QtTest>

#include "main_window.h"

class TestMainWindow : public QObject {
    Q_OBJECT

private slots:
    void opensAndCloses()
    {
        QTemporaryDir dir;
        MainWindow w(dir.filePath("layout.ini"));
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QCOMPARE(w.windowTitle(), QStringLiteral("MoE Lens"));
        QCOMPARE(w.insideDocks().size(), 4);
        QVERIFY(w.menuBar()->actions().size() >= 3);
        QVERIFY(w.close());
        QVERIFY(QFile::exists(dir.filePath("layout.ini")));
    }

    void restoresDockLayout()
    {
        QTemporaryDir dir;
        {
            MainWindow w(dir.filePath("layout.ini"));
            w.show();
            QVERIFY(QTest::qWaitForWindowExposed(&w));
            QDockWidget* dock = w.findChild<QDockWidget*>("latentCacheDock");
            QVERIFY(dock);
            dock->hide();
            w.close();
        }
        MainWindow again(dir.filePath("layout.ini"));
        again.show();
        QVERIFY(QTest::qWaitForWindowExposed(&again));
        QDockWidget* dock = again.findChild<QDockWidget*>("latentCacheDock");
        QVERIFY(dock);
        QVERIFY(dock->isHidden());
        QVERIFY(!again.findChild<QDockWidget*>("routingDock")->isHidden());
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
