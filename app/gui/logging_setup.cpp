#include "logging_setup.h"

#include <QString>
#include <QtGlobal>

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

std::shared_ptr<spdlog::logger> setupLogging(const QString& logFile, const std::string& level)
{
    constexpr size_t kMaxFileBytes = 5 * 1024 * 1024;
    constexpr size_t kKeptFiles = 3;
    auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(logFile.toStdString(), kMaxFileBytes, kKeptFiles);
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("moelens", spdlog::sinks_init_list{file, console});
    logger->set_level(spdlog::level::from_str(level));
    // Errors reach the file at once: a crash right after must not eat the reason.
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
    moelens::set_engine_logger(logger);
    qInstallMessageHandler(qtMessageToSpdlog);
    return logger;
}
