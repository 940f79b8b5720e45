#pragma once
// Reads tokenizer.json in one streaming pass: model.vocab and model.merges (the
// bulk of the file: 128k entries each for DeepSeek) go straight into flat vectors,
// everything else into a small JSON tree. About 4x faster than building the whole
// tree (nlohmann's objects are std::maps).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelens::tokenizer {

struct TokenizerJson {
    nlohmann::json root;  // the file without model.vocab and model.merges
    bool has_vocab = false, has_merges = false;
    std::vector<std::pair<std::string, std::uint32_t>> vocab;
    std::vector<std::pair<std::string, std::string>> merges;  // both "a b" and ["a", "b"] forms
};

// Throws TokenizerError naming `path` on malformed JSON or a malformed vocab/merges entry.
TokenizerJson read_tokenizer_json(const std::string& text, const std::string& path);

}  // namespace moelens::tokenizer
