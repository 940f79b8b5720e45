#include "tokenizer/tokenizer_json.h"

#include <fmt/format.h>

#include "moelens/error.h"

namespace moelens::tokenizer {
namespace {

using nlohmann::json;

class Reader final : public nlohmann::json_sax<json> {
public:
    explicit Reader(TokenizerJson& out) : m_out(out) {}

    std::string error;

    bool null() override { return value(json()); }
    bool boolean(bool v) override { return value(json(v)); }
    bool number_integer(number_integer_t v) override
    {
        if (m_mode == Mode::Vocab) return vocab_id(v >= 0 ? static_cast<std::uint64_t>(v) : ~std::uint64_t{0});
        return value(json(v));
    }
    bool number_unsigned(number_unsigned_t v) override
    {
        if (m_mode == Mode::Vocab) return vocab_id(v);
        return value(json(v));
    }
    bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
    bool binary(binary_t&) override { return fail("unexpected binary value"); }

    bool string(string_t& s) override
    {
        if (m_mode == Mode::Merges) {
            const std::size_t space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
                return fail(fmt::format("model.merges[{}] \"{}\" is not two tokens separated by one space",
                                        m_out.merges.size(), s));
            m_out.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
            return true;
        }
        if (m_mode == Mode::MergePair) {
            if (m_pair_size == 2) return bad_pair();
            (m_pair_size++ == 0 ? m_out.merges.back().first : m_out.merges.back().second) = std::move(s);
            return true;
        }
        return value(json(std::move(s)));
    }

    bool key(string_t& k) override
    {
        m_key = std::move(k);
        return true;
    }

    bool start_object(std::size_t) override
    {
        if (m_mode != Mode::Dom) return m_mode == Mode::Vocab ? fail("model.vocab holds an object") : bad_pair();
        if (in_model() && m_key == "vocab") {
            m_out.has_vocab = true;
            m_mode = Mode::Vocab;
            return true;
        }
        return open(json::object());
    }

    bool end_object() override
    {
        if (m_mode == Mode::Vocab) {
            m_mode = Mode::Dom;
            return true;
        }
        close();
        return true;
    }

    bool start_array(std::size_t) override
    {
        if (m_mode == Mode::Merges) {
            m_out.merges.emplace_back();
            m_pair_size = 0;
            m_mode = Mode::MergePair;
            return true;
        }
        if (m_mode != Mode::Dom) return m_mode == Mode::Vocab ? fail("model.vocab holds an array") : bad_pair();
        if (in_model() && m_key == "merges") {
            m_out.has_merges = true;
            m_mode = Mode::Merges;
            return true;
        }
        return open(json::array());
    }

    bool end_array() override
    {
        if (m_mode == Mode::MergePair) {
            if (m_pair_size != 2) return bad_pair();
            m_mode = Mode::Merges;
            return true;
        }
        if (m_mode == Mode::Merges) {
            m_mode = Mode::Dom;
            return true;
        }
        close();
        return true;
    }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override
    {
        return fail(std::string("not valid JSON: ") + e.what());
    }

private:
    enum class Mode { Dom, Vocab, Merges, MergePair };

    bool fail(std::string what)
    {
        if (error.empty()) error = std::move(what);
        return false;
    }

    bool bad_pair() { return fail(fmt::format("model.merges[{}] is neither \"a b\" nor [\"a\", \"b\"]", m_out.merges.size() - 1)); }

    // Directly inside the top-level "model" object.
    bool in_model() const { return m_stack.size() == 2 && m_stack_keys[1] == "model"; }

    bool vocab_id(std::uint64_t id)
    {
        if (id >= 0x7FFFFFFF) return fail(fmt::format("model.vocab[\"{}\"] is not a valid id", m_key));
        m_out.vocab.emplace_back(std::move(m_key), static_cast<std::uint32_t>(id));
        return true;
    }

    json* place(json v)
    {
        if (m_mode == Mode::Vocab) {
            fail(fmt::format("model.vocab[\"{}\"] is not a valid id", m_key));
            return nullptr;
        }
        if (m_mode != Mode::Dom) {
            bad_pair();
            return nullptr;
        }
        if (m_stack.empty()) {
            m_out.root = std::move(v);
            return &m_out.root;
        }
        json& parent = *m_stack.back();
        if (parent.is_array()) {
            parent.push_back(std::move(v));
            return &parent.back();
        }
        json& slot = parent[m_key];
        slot = std::move(v);
        return &slot;
    }

    bool value(json v) { return place(std::move(v)) != nullptr; }

    bool open(json container)
    {
        const std::string key = m_stack.empty() || m_stack.back()->is_array() ? std::string() : m_key;
        json* p = place(std::move(container));
        if (!p) return false;
        m_stack.push_back(p);
        m_stack_keys.push_back(key);
        return true;
    }

    void close()
    {
        m_stack.pop_back();
        m_stack_keys.pop_back();
    }

    TokenizerJson& m_out;
    Mode m_mode = Mode::Dom;
    std::vector<json*> m_stack;
    std::vector<std::string> m_stack_keys;  // the key each open container sits under
    std::string m_key;
    int m_pair_size = 0;
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& text, const std::string& path)
{
    TokenizerJson out;
    Reader reader(out);
    if (!json::sax_parse(text, &reader) || !reader.error.empty())
        throw TokenizerError(fmt::format("{}: {}", path, reader.error.empty() ? "not valid JSON" : reader.error));
    return out;
}

}  // namespace moelens::tokenizer
