#pragma once
// The generated Unicode 16.0 data (unicode_tables.cpp, from tools/unicode/).
#include <cstddef>
#include <cstdint>

namespace moelens::tokenizer::unicode {

struct UnicodeRun {
    std::uint32_t first;  // first code point of the run
    std::uint8_t value;   // GeneralCategory | kWhiteSpaceFlag
};

extern const UnicodeRun kUnicodeRuns[];
extern const std::size_t kUnicodeRunCount;

}  // namespace moelens::tokenizer::unicode
