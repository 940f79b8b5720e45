// moelens: the GUI. Parses the command line, sets up the profile folder and the
// logger, the engine and storage workers on their threads, then shows the main window.
#include <QApplication>
#include <QCommandLineParser>
#include <QDockWidget>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMessageBox>
#include <QScreen>
#include <QStatusBar>
#include <QTimer>

#include <cstdio>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "app_paths.h"
#include "colour_scheme.h"
#include "compare/compare_view.h"
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
    QCommandLineOption modelDir("model", "Open this model folder (config.json + .safetensors) instead of the last one.",
                                "dir");
    QCommandLineOption randomDemo("random-demo", "Start on the random-weight demo model instead of the last one.");
    QCommandLineOption quitAfter("quit-after", "Close the window after this many milliseconds (smoke tests).", "ms");
    QCommandLineOption maximized("maximized", "Fill the screen (also without a window manager).");
    QCommandLineOption send("send", "Send this message once the model is ready (demos, screenshots, smoke tests).",
                            "text");
    QCommandLineOption palette("palette", "Colour scheme: system (default), light or dark.", "scheme", "system");
    QCommandLineOption panel("panel", "Bring this panel to the front: routingDock, expertLoadDock, latentCacheDock "
                             "or devicesDock.", "name");
    QCommandLineOption compare("compare", "Open a compare tab on this prompt once the model is ready and run it "
                               "(demos, screenshots).", "text");
    QCommandLineOption compareColumn("compare-column", "A --compare column as a JSON object of sampling and MoE "
                                     "settings, e.g. '{\"temperature\":0,\"experts_per_token\":2}' (repeat for "
                                     "each column).", "json");
    parser.addOptions({logLevel, dataDir, modelDir, randomDemo, quitAfter, maximized, send, palette, panel, compare,
                       compareColumn});
    parser.process(app);

    if (!applyColourScheme(parser.value(palette))) {
        std::fprintf(stderr, "moelens: --palette expects system, light or dark, got '%s'\n", qPrintable(parser.value(palette)));
        return 2;
    }

    const AppPaths paths(parser.value(dataDir));
    QString error;
    if (!paths.ensureExists(&error)) {
        QMessageBox::critical(nullptr, QStringLiteral("MoE Lens"),
                              QStringLiteral("MoE Lens cannot use its data folder: %1").arg(error));
        return 1;
    }

    std::string logProblem;
    const std::shared_ptr<spdlog::logger> logger = setupLogging(paths.logFile(), parser.value(logLevel).toStdString(), &logProblem);
    if (!logProblem.empty())
        logger->warn("cannot write the log file {} ({}): logging to the console only", paths.logFile().toStdString(), logProblem);
    logger->info("MoE Lens {} starting; profile {}", MOELENS_VERSION, paths.dataDir().toStdString());
    const moelens::DeviceReport& devices = moelens::probe_devices();
    logger->info("compute: {}", devices.cuda_usable ? "CUDA" : "CPU");

    // The workers outlive the window: it talks to them until it is destroyed.
    WorkerThreads workers(paths.databaseFile());
    MainWindow::Options options;
    options.modelDir = parser.value(modelDir);
    options.randomDemoOnStart = parser.isSet(randomDemo);
    MainWindow window(paths, workers.engine(), workers.storage(), options);
    if (parser.isSet(maximized)) window.setGeometry(window.screen()->availableGeometry());
    if (parser.isSet(panel)) {
        QDockWidget* dock = window.findChild<QDockWidget*>(parser.value(panel));
        if (!dock) {
            logger->error("--panel: there is no panel named '{}'", parser.value(panel).toStdString());
            return 2;
        }
        dock->show();
        dock->raise();
    }
    if (parser.isSet(send)) {
        const QString text = parser.value(send);
        auto once = std::make_shared<QMetaObject::Connection>();
        *once = QObject::connect(&window, &MainWindow::modelReady, &window, [&window, text, once] {
            QObject::disconnect(*once);
            window.sendText(text);
        });
    }
    if (parser.isSet(compare)) {
        std::vector<ColumnSettings> columns;
        for (const QString& json : parser.values(compareColumn)) {
            QJsonParseError parseError;
            const QJsonObject o = QJsonDocument::fromJson(json.toUtf8(), &parseError).object();
            try {
                if (parseError.error != QJsonParseError::NoError) throw std::runtime_error(parseError.errorString().toStdString());
                columns.push_back(ColumnSettings::fromJson(o, o));
            } catch (const std::exception& e) {
                logger->error("--compare-column '{}': {}", json.toStdString(), e.what());
                return 2;
            }
        }
        QObject::connect(&window, &MainWindow::modelReady, &window, [&window] { window.openCompare(); },
                         Qt::SingleShotConnection);
        QObject::connect(&window, &MainWindow::compareOpened, &window,
                         [text = parser.value(compare), columns](CompareView* view) {
                             view->setPrompt(text);
                             if (!columns.empty()) view->setColumns(columns);
                             view->run();
                         }, Qt::SingleShotConnection);
    }
    window.show();
    if (!logProblem.empty())
        window.statusBar()->showMessage(QObject::tr("The log file %1 cannot be written (%2): logging to the console only.")
                                            .arg(paths.logFile(), QString::fromStdString(logProblem)));

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
