// The routing-trace blob kept in the database (storage/src/trace_codec.cpp).
// Random bytes would almost never pass the CRC-32 at the end, so the target
// writes the right checksum over them first and fuzzes the fields behind it. A
// blob that decodes must encode again to one that decodes to the same trace.
#include <vector>

#include "crc32.h"
#include "fuzz_support.h"
#include "moelens_storage/error.h"
#include "moelens_storage/trace_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace moelens::storage;
    std::vector<std::uint8_t> blob(data, data + size);
    if (blob.size() >= 8 && (blob[0] & 1)) {  // half the inputs keep their own checksum
        const std::uint32_t crc = crc32(std::span<const std::uint8_t>(blob.data(), blob.size() - 4));
        for (int i = 0; i < 4; ++i) blob[blob.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    }
    try {
        const RoutingTrace t = decode_trace(blob);
        const RoutingTrace again = decode_trace(encode_trace(t));
        if (again.token_ids != t.token_ids || again.expert_ids != t.expert_ids || again.layers != t.layers) __builtin_trap();
    } catch (const StorageError& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
