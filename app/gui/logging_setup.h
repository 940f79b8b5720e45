#pragma once
// The GUI's logger: a rotating file in the profile's logs folder plus stderr. The
// same logger is handed to the engine, and Qt's own messages are routed into it,
// so one file holds everything a bug report needs.
#include <memory>
#include <string>

#include <spdlog/logger.h>

class QString;

// When the log file cannot be made (its folder not writable, not a folder, the
// disk full) the logger writes to stderr only and `problem` says why: the app
// must still start, and tell the user where its log went.
std::shared_ptr<spdlog::logger> setupLogging(const QString& logFile, const std::string& level, std::string* problem);
