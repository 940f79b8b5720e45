#pragma once
// Text <-> token ids for DeepSeek-family models, identical to Hugging Face tokenizers
// on their tokenizer.json (byte-level BPE). Qt-free. See docs/tokenizer.md.
//
// A Tokenizer is immutable after load() and safe to use from several threads; copies
// share the loaded data.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moelens/error.h"

namespace moelens {

class Tokenizer {
public:
    // `dir_or_file`: a model folder holding tokenizer.json, or the tokenizer.json file.
    // tokenizer_config.json beside it (optional) supplies add_bos_token/add_eos_token,
    // the bos/eos tokens and chat_template (or chat_template.jinja beside it).
    // Throws TokenizerError naming the file and the unsupported feature or bad key.
    static Tokenizer load(const std::string& dir_or_file);

    // Hugging Face `Tokenizer.encode(text, add_special_tokens)`: the tokenizer.json
    // pipeline, with its post-processor when add_special_tokens is true.
    // Throws TokenizerError if `text` is not valid UTF-8.
    std::vector<std::uint32_t> encode(std::string_view text, bool add_special_tokens = false) const;
    // What Python transformers' `tokenizer.encode(text)` returns: for tokenizers with
    // add_bos_token/add_eos_token in tokenizer_config.json (LlamaTokenizerFast, as
    // DeepSeek's) BOS/EOS around encode(text, false); otherwise encode(text, true).
    std::vector<std::uint32_t> encode_with_bos(std::string_view text) const;

    // Ids outside the vocabulary are dropped; invalid UTF-8 becomes U+FFFD per
    // maximal invalid subsequence; skip_special_tokens drops special added tokens.
    std::string decode(std::span<const std::uint32_t> ids, bool skip_special_tokens = false) const;

    // The bytes one token stands for (may be part of a UTF-8 character); empty for
    // ids outside the vocabulary.
    std::string token_to_piece(std::uint32_t id) const;
    // The token's vocabulary string (byte-level alphabet), empty if unknown.
    std::string id_to_token(std::uint32_t id) const;
    std::optional<std::uint32_t> token_to_id(std::string_view token) const;
    bool is_known(std::uint32_t id) const;
    bool is_special(std::uint32_t id) const;

    // One past the largest id (model vocabulary and added tokens).
    std::uint32_t vocab_size() const;
    std::optional<std::uint32_t> bos_id() const;
    std::optional<std::uint32_t> eos_id() const;
    const std::string& bos_token() const;  // empty if none
    const std::string& eos_token() const;
    // The Jinja chat template from tokenizer_config.json; empty if there is none.
    const std::string& chat_template() const;
    // Path of the tokenizer.json that was loaded.
    const std::string& path() const;

    struct Impl;

private:
    explicit Tokenizer(std::shared_ptr<const Impl> impl) : m_impl(std::move(impl)) {}
    std::shared_ptr<const Impl> m_impl;
    friend class StreamingDetokenizer;
};

// Turns generated ids into text as they arrive without ever emitting half a UTF-8
// character: bytes of an incomplete character wait for the next token. The
// concatenation of all push() results and finish() equals tokenizer.decode(ids).
class StreamingDetokenizer {
public:
    explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false);

    // Text that became complete with this token (possibly empty).
    std::string push(std::uint32_t id);
    // Flushes bytes still waiting (an unfinished character becomes U+FFFD).
    std::string finish();
    void reset() { m_pending.clear(); }

private:
    Tokenizer m_tokenizer;
    bool m_skip_special;
    std::string m_pending;
};

}  // namespace moelens
