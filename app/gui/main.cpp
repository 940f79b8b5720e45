// moelens: the GUI. Parses the command line, sets up the profile folder and the
// logger, the engine and storage workers on their threads, then shows the main window.
#include <QApplication>
#include <QCommandLineParser>
#include <QMessageBox>
#include <QScreen>
#include <QTimer>

#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "app_paths.h"
#include "logging_setup.h"
#include "main_window.h"
#include "moelens/devices.h"
#include "moelens/version.h"
#include "workers/worker_threads.h"

int main(int argc, char** argv)
{
    // --version must work without a display (packaging checks run it headless).
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--version") == 0) {
            std::printf("moelens %s\n", MOELENS_VERSION);
            return 0;
        }
    }

    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("moelens"));
    QApplication::setApplicationDisplayName(QStringLiteral("MoE Lens"));
    QApplication::setApplicationVersion(QStringLiteral(MOELENS_VERSION));
    QApplication::setDesktopFileName(QStringLiteral("moelens"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Run DeepSeek-V2-family MoE models locally and see inside them."));
    parser.addHelpOption();
    QCommandLineOption logLevel("log-level", "trace, debug, info, warn, error, critical or off (default info).",
                                "level", "info");
    QCommandLineOption dataDir("data-dir", "Profile folder (database, logs, layout, demo model).", "dir");
    QCommandLineOption quitAfter("quit-after", "Close the window after this many milliseconds (smoke tests).", "ms");
    QCommandLineOption maximized("maximized", "Fill the screen (also without a window manager).");
    parser.addOptions({logLevel, dataDir, quitAfter, maximized});
    parser.process(app);

    const AppPaths paths(parser.value(dataDir));
    QString error;
    if (!paths.ensureExists(&error)) {
        QMessageBox::critical(nullptr, QStringLiteral("MoE Lens"),
                              QStringLiteral("MoE Lens cannot use its data folder: %1").arg(error));
        return 1;
    }

    std::shared_ptr<spdlog::logger> logger;
    try {
        logger = setupLogging(paths.logFile(), parser.value(logLevel).toStdString());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moelens: cannot open the log file %s: %s\n", qPrintable(paths.logFile()), e.what());
        return 1;
    }
    logger->info("MoE Lens {} starting; profile {}", MOELENS_VERSION, paths.dataDir().toStdString());
    const moelens::DeviceReport& devices = moelens::probe_devices();
    logger->info("compute: {}", devices.cuda_usable ? "CUDA" : "CPU");

    // The workers outlive the window: it talks to them until it is destroyed.
    WorkerThreads workers(paths.databaseFile());
    MainWindow window(paths, workers.engine(), workers.storage(), MainWindow::Options{});
    if (parser.isSet(maximized)) window.setGeometry(window.screen()->availableGeometry());
    window.show();

    if (parser.isSet(quitAfter)) {
        bool ok = false;
        const int ms = parser.value(quitAfter).toInt(&ok);
        if (!ok || ms < 0) {
            logger->error("--quit-after expects a number of milliseconds, got '{}'", parser.value(quitAfter).toStdString());
            return 2;
        }
        QTimer::singleShot(ms, &window, &QWidget::close);
    }

    const int rc = app.exec();
    logger->info("MoE Lens exiting with code {}", rc);
    logger->flush();
    return rc;
}
