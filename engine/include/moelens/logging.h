#pragma once
// The engine logs through a logger handed to it by the application; it never picks
// file paths or sinks itself. Without one it logs nothing.
#include <memory>

#include <spdlog/logger.h>

namespace moelens {

void set_engine_logger(std::shared_ptr<spdlog::logger> logger);

// Never null: a null-sink logger until set_engine_logger() is called.
spdlog::logger& engine_log();

}  // namespace moelens
