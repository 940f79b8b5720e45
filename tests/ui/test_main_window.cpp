// The main window opens offscreen with its docks, closes cleanly, and restores the
// dock layout it saved on the next start. No model is loaded here (see
// test_chat_flow for the window driven with the demo model).
#include <QDockWidget>
#include <QLabel>
#include <QMenuBar>
#include <QTemporaryDir>
#include <QtTest>

#include "app_paths.h"
#include "chat/input_box.h"
#include "main_window.h"
#include "workers/worker_threads.h"

class TestMainWindow : public QObject {
    Q_OBJECT

private slots:
    void opensAndCloses()
    {
        QTemporaryDir dir;
        AppPaths paths(dir.path());
        QVERIFY(paths.ensureExists(nullptr));
        WorkerThreads workers(paths.databaseFile());
        MainWindow w(paths, workers.engine(), workers.storage(), MainWindow::Options{false});
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QCOMPARE(w.windowTitle(), QStringLiteral("MoE Lens"));
        QCOMPARE(w.insideDocks().size(), 4);
        QVERIFY(w.menuBar()->actions().size() >= 5);
        // Without a model the input is read-only and says why.
        QVERIFY(w.input()->isReadOnly());
        auto* hint = w.findChild<QLabel*>("inputHint");
        QVERIFY(hint && hint->text().contains("No model"));
        QVERIFY(w.close());
        QVERIFY(QFile::exists(paths.layoutFile()));
    }

    void restoresDockLayout()
    {
        QTemporaryDir dir;
        AppPaths paths(dir.path());
        QVERIFY(paths.ensureExists(nullptr));
        WorkerThreads workers(paths.databaseFile());
        {
            MainWindow w(paths, workers.engine(), workers.storage(), MainWindow::Options{false});
            w.show();
            QVERIFY(QTest::qWaitForWindowExposed(&w));
            QDockWidget* dock = w.findChild<QDockWidget*>("latentCacheDock");
            QVERIFY(dock);
            dock->hide();
            w.close();
        }
        MainWindow again(paths, workers.engine(), workers.storage(), MainWindow::Options{false});
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
