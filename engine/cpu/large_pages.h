#pragma once
// Memory that decode streams: 2 MiB-aligned and offered to the kernel for
// transparent huge pages (madvise), so that reading it does not walk a page
// table entry per 4 KiB. Where the kernel has no huge pages it is ordinary memory.
#include <cstddef>
#include <cstdint>

namespace moelens::cpu {

class LargePageBuffer {
public:
    LargePageBuffer() = default;
    explicit LargePageBuffer(std::size_t bytes);  // throws BackendError when out of memory
    ~LargePageBuffer();
    LargePageBuffer(LargePageBuffer&& o) noexcept;
    LargePageBuffer& operator=(LargePageBuffer&& o) noexcept;
    LargePageBuffer(const LargePageBuffer&) = delete;
    LargePageBuffer& operator=(const LargePageBuffer&) = delete;

    std::byte* data() const { return m_data; }
    std::size_t size() const { return m_size; }

private:
    std::byte* m_data = nullptr;
    std::size_t m_size = 0;
};

// Bytes the kernel says could be allocated without swapping (MemAvailable in
// /proc/meminfo; it counts reclaimable page cache), 0 when unknown.
std::uint64_t available_memory_bytes();

}  // namespace moelens::cpu
