#pragma once
// GPT-2's byte-level alphabet (`bytes_to_unicode`): every byte maps to one printable
// code point, so any byte string is a string of vocabulary characters.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace moelens::tokenizer::byte_level {

// The code point standing for byte b.
char32_t byte_to_char(std::uint8_t b);

// UTF-8 of byte_to_char(b), for all 256 bytes.
const std::array<std::string, 256>& byte_to_utf8();

// Maps a vocabulary token back to bytes. Returns false (and leaves `out` partly
// written) if the token holds a character outside the alphabet.
bool token_to_bytes(std::string_view token, std::string& out);

// Maps bytes to their alphabet string (the inverse of token_to_bytes).
std::string bytes_to_token(std::string_view bytes);

}  // namespace moelens::tokenizer::byte_level
