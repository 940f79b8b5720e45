#pragma once
// Standard base64 (RFC 4648, with padding) for trace blobs in JSON exports.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moelens::storage {

std::string base64_encode(std::span<const std::uint8_t> bytes);
// nullopt on any character outside the alphabet or a bad length/padding.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

}  // namespace moelens::storage
