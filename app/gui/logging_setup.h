#pragma once
// The GUI's logger: a rotating file in the profile's logs folder plus stderr. The
// same logger is handed to the engine, and Qt's own messages are routed into it,
// so one file holds everything a bug report needs.
#include <memory>
#include <string>

#include <spdlog/logger.h>

class QString;

// Throws spdlog::spdlog_ex when the log file cannot be opened.
std::shared_ptr<spdlog::logger> setupLogging(const QString& logFile, const std::string& level);
