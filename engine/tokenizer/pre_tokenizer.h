#pragma once
// The pre-tokenizer pipeline of tokenizer.json: a list of steps, each applied to every
// piece the previous step produced (a step never sees past its piece). Pieces are
// byte ranges of the text segment; the final ByteLevel mapping happens in the BPE
// model, so the steps here work on the original code points.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace moelens::tokenizer {

struct Piece {
    std::uint32_t begin, end;
};

// Hugging Face SplitDelimiterBehavior.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

class PreTokenizerStep {
public:
    virtual ~PreTokenizerStep() = default;
    // Appends the pieces of text[piece] to `out`.
    virtual void split(std::string_view text, Piece piece, std::vector<Piece>& out) const = 0;
};

// Split: a regex or literal string; matches and gaps handled per `behavior`.
std::unique_ptr<PreTokenizerStep> make_regex_split(std::string_view pattern, SplitBehavior behavior, bool invert);
std::unique_ptr<PreTokenizerStep> make_string_split(std::string literal, SplitBehavior behavior, bool invert);
// Digits: each \p{N} character its own piece, or runs of them (individual_digits=false).
std::unique_ptr<PreTokenizerStep> make_digits(bool individual_digits);

class PreTokenizer {
public:
    void add(std::unique_ptr<PreTokenizerStep> step) { m_steps.push_back(std::move(step)); }
    bool empty() const { return m_steps.empty(); }
    // Pieces of text (the whole text is the first piece); empty pieces are dropped.
    void run(std::string_view text, std::vector<Piece>& pieces) const;

private:
    std::vector<std::unique_ptr<PreTokenizerStep>> m_steps;
};

}  // namespace moelens::tokenizer
