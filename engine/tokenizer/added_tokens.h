#pragma once
// Added tokens (tokenizer.json "added_tokens"): found in the raw text before
// pre-tokenisation, leftmost-longest, honouring lstrip/rstrip/single_word, exactly
// as Hugging Face tokenizers' AddedVocabulary does: first the tokens with
// normalized=false on the input, then those with normalized=true on the
// (normalized) text between them.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelens::tokenizer {

struct AddedToken {
    std::uint32_t id = 0;
    std::string content;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
    bool special = false;
};

// A span of the input: an added token (id set) or text for the pipeline.
struct Segment {
    std::size_t begin = 0, end = 0;
    std::uint32_t id = 0;
    bool is_token = false;
};

class AddedTokenMatcher {
public:
    void build(const std::vector<AddedToken>& tokens, bool normalized);
    bool empty() const { return m_nodes.size() <= 1; }
    // Splits text[begin, end) into segments, appending to `out`.
    void split(std::string_view text, std::size_t begin, std::size_t end, std::vector<Segment>& out) const;

private:
    struct Node {
        std::vector<std::pair<unsigned char, std::uint32_t>> children;  // byte -> node index
        std::int32_t token = -1;  // index into m_tokens when a token ends here
    };
    std::uint32_t child(std::uint32_t node, unsigned char b) const;

    std::vector<Node> m_nodes;
    std::vector<AddedToken> m_tokens;
    bool m_first_byte[256] = {};
};

}  // namespace moelens::tokenizer
