#include "moelens/logging.h"

#include <atomic>

#include <spdlog/sinks/null_sink.h>

namespace moelens {
namespace {

std::shared_ptr<spdlog::logger> make_null_logger()
{
    return std::make_shared<spdlog::logger>("moelens-engine", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// std::atomic<shared_ptr> would do, but GCC 12's libstdc++ lacks it; the logger is
// set once at start-up before any engine thread runs, so a plain pointer swap
// guarded by the documented call order is enough.
std::shared_ptr<spdlog::logger>& logger_slot()
{
    static std::shared_ptr<spdlog::logger> slot = make_null_logger();
    return slot;
}

}  // namespace

void set_engine_logger(std::shared_ptr<spdlog::logger> logger)
{
    logger_slot() = logger ? std::move(logger) : make_null_logger();
}

spdlog::logger& engine_log()
{
    return *logger_slot();
}

}  // namespace moelens
