#include "cpu/large_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

#include "moelens/error.h"

namespace moelens::cpu {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;
}

LargePageBuffer::LargePageBuffer(std::size_t bytes)
{
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    if (rounded == 0) return;
    m_data = static_cast<std::byte*>(std::aligned_alloc(kHugePage, rounded));
    if (!m_data) throw BackendError("cannot allocate " + std::to_string(rounded) + " bytes for weights");
    madvise(m_data, rounded, MADV_HUGEPAGE);  // a hint: without huge pages the memory works as usual
    m_size = bytes;
}

LargePageBuffer::~LargePageBuffer() { std::free(m_data); }

LargePageBuffer::LargePageBuffer(LargePageBuffer&& o) noexcept
    : m_data(std::exchange(o.m_data, nullptr)), m_size(std::exchange(o.m_size, 0))
{
}

LargePageBuffer& LargePageBuffer::operator=(LargePageBuffer&& o) noexcept
{
    if (this != &o) {
        std::free(m_data);
        m_data = std::exchange(o.m_data, nullptr);
        m_size = std::exchange(o.m_size, 0);
    }
    return *this;
}

std::uint64_t available_memory_bytes()
{
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("MemAvailable:", 0) == 0) return std::strtoull(line.c_str() + 13, nullptr, 10) * 1024;  // in kB
    return 0;
}

}  // namespace moelens::cpu
