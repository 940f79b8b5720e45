#pragma once
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of trace blobs.
#include <cstdint>
#include <span>

namespace moelens::storage {

std::uint32_t crc32(std::span<const std::uint8_t> bytes);

}  // namespace moelens::storage
