#pragma once
// Adds the wall time of a scope to one field of StageTimes (see session.h).
#include <chrono>

namespace moelens {

class StageClock {
public:
    explicit StageClock(double& sink) : m_sink(sink), m_start(std::chrono::steady_clock::now()) {}
    ~StageClock() { m_sink += std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count(); }
    StageClock(const StageClock&) = delete;
    StageClock& operator=(const StageClock&) = delete;

private:
    double& m_sink;
    std::chrono::steady_clock::time_point m_start;
};

}  // namespace moelens
