#include "logging_setup.h"

#include <QDir>
#include <QFileInfo>
#include <QString>
#include <QtGlobal>

#include <vector>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "moelens/logging.h"

namespace {

void qtMessageToSpdlog(QtMsgType type, const QMessageLogContext&, const QString& msg)
{
    const std::string text = msg.toStdString();
    switch (type) {
    case QtDebugMsg: spdlog::debug("qt: {}", text); break;
    case QtInfoMsg: spdlog::info("qt: {}", text); break;
    case QtWarningMsg: spdlog::warn("qt: {}", text); break;
    case QtCriticalMsg: spdlog::error("qt: {}", text); break;
    case QtFatalMsg: spdlog::critical("qt: {}", text); spdlog::default_logger()->flush(); break;
    }
}

}  // namespace

std::shared_ptr<spdlog::logger> setupLogging(const QString& logFile, const std::string& level, std::string* problem)
{
    constexpr size_t kMaxFileBytes = 5 * 1024 * 1024;
    constexpr size_t kKeptFiles = 3;
    std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
    const QString dir = QFileInfo(logFile).absolutePath();
    try {
        if (!QDir().mkpath(dir)) throw spdlog::spdlog_ex("cannot create the folder " + dir.toStdString());
        sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(logFile.toStdString(), kMaxFileBytes, kKeptFiles));
    } catch (const spdlog::spdlog_ex& e) {
        if (problem) *problem = e.what();
    }
    auto logger = std::make_shared<spdlog::logger>("moelens", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::from_str(level));
    // Errors reach the file at once: a crash right after must not eat the reason.
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
    moelens::set_engine_logger(logger);
    qInstallMessageHandler(qtMessageToSpdlog);
    return logger;
}
