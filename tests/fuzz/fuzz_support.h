#pragma once
// Helpers shared by the fuzz targets (tests/fuzz/*.cpp; docs/reliability.md).
//
// Every target defines LLVMFuzzerTestOneInput. Built with clang and
// -fsanitize=fuzzer (MOELENS_FUZZ=ON) it is a libFuzzer binary; in every other
// build it is linked with replay_main.cpp and replays its seed corpus and the
// inputs of past findings as a unit test.
//
// A target lets through only the errors our contract promises for bad input
// (moelens::Error and its kinds, storage::StorageError): anything else (a crash,
// a sanitizer report, another exception) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace moelens::fuzz {

// An input refused with the promised error. With MOELENS_FUZZ_VERBOSE set the
// message is printed: to see why a seed does not get past a parser.
inline void rejected(const std::exception& e)
{
    static const bool verbose = std::getenv("MOELENS_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
}

// A folder of this process's own (RAM-backed where /dev/shm exists), made once.
inline const std::filesystem::path& scratch_dir()
{
    static const std::filesystem::path dir = [] {
        const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
        auto d = base / ("moelens-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

inline void write_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

// Splits an input at the first "\n----\n" (two fields in one input; the second is
// empty when the separator is missing).
inline std::pair<std::string_view, std::string_view> split2(std::string_view s)
{
    constexpr std::string_view sep = "\n----\n";
    const std::size_t at = s.find(sep);
    if (at == std::string_view::npos) return {s, {}};
    return {s.substr(0, at), s.substr(at + sep.size())};
}

// Reads little values off the front of an input (zeros once it runs out).
class Bytes {
public:
    Bytes(const std::uint8_t* data, std::size_t size) : m_p(data), m_end(data + size) {}
    std::uint8_t u8() { return m_p < m_end ? *m_p++ : 0; }
    std::uint32_t u32()
    {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(u8()) << (8 * i);
        return v;
    }
    std::size_t left() const { return static_cast<std::size_t>(m_end - m_p); }

private:
    const std::uint8_t* m_p;
    const std::uint8_t* m_end;
};

}  // namespace moelens::fuzz
