#pragma once
// What crash_writer streams, known to both sides of the crash test.
#include <string>

namespace moelens::storage::test {

inline constexpr int kCrashChunks = 40;

// Chunk `c` of a reply: a few "tokens", as a caller batching 4 tokens per save would.
inline std::string crash_chunk(int c)
{
    std::string s;
    for (int t = 0; t < 4; ++t) s += "tok" + std::to_string(c * 4 + t) + " ";
    return s;
}

inline std::string crash_reply_text()
{
    std::string s;
    for (int c = 0; c < kCrashChunks; ++c) s += crash_chunk(c);
    return s;
}

inline std::string crash_question(const std::string& tag, int round)
{
    return "question " + tag + "-" + std::to_string(round);
}

}  // namespace moelens::storage::test
