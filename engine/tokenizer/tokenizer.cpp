// Loading tokenizer.json / tokenizer_config.json and the encode/decode entry points.
// Every key the reference would act on is read; values this implementation does not
// support are refused with the file, the key and the value, never ignored.
#include "moelens/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moelens/error.h"
#include "moelens/logging.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace moelens {

using nlohmann::json;
using namespace moelens::tokenizer;

namespace {

// The GPT-2 split used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct PostItem {
    bool is_sequence = false;           // the text's own ids ($A)
    std::vector<std::uint32_t> ids;     // a special token's ids
};

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TokenizerError(fmt::format("{}: cannot open", path.string()));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json parse_json(const std::filesystem::path& path)
{
    try {
        return json::parse(read_file(path));
    } catch (const json::exception& e) {
        throw TokenizerError(fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
    }
}

}  // namespace

struct Tokenizer::Impl {
    std::string path;
    std::string file_name;  // for messages

    AddedTokenMatcher raw_matcher;         // added tokens with normalized=false
    AddedTokenMatcher normalized_matcher;  // normalized=true (the normalizer is the identity)
    PreTokenizer pre_tokenizer;
    BpeModel bpe;

    std::vector<std::string> id_token;  // vocabulary string per id
    std::vector<std::string> id_bytes;  // what the ByteLevel decoder makes of it
    std::vector<std::uint8_t> id_flags;  // kKnown | kSpecial
    static constexpr std::uint8_t kKnown = 1, kSpecial = 2;
    std::unordered_map<std::string, std::uint32_t> token_ids;

    bool has_post_template = false;
    std::vector<PostItem> post_single;

    bool transformers_bos_eos = false;
    bool add_bos = false, add_eos = false;
    std::string bos_token, eos_token;
    std::optional<std::uint32_t> bos_id, eos_id;
    std::string chat_template;

    [[noreturn]] void fail(const std::string& what) const
    {
        throw TokenizerError(fmt::format("{}: {}", path, what));
    }

    // Tables are indexed by id, so an id far past the tokens there are (a hostile
    // file's "x": 59999910) would allocate gigabytes: real vocabularies run
    // 0..n-1, with added tokens just past them (DeepSeek: 128000 + 815).
    static constexpr std::uint32_t kMaxIdGap = 1u << 20;

    void set_token(std::uint32_t id, const std::string& token, bool special)
    {
        if (id >= id_token.size() + kMaxIdGap)
            fail(fmt::format("token \"{}\" has id {}, more than {} past the {} ids before it (ids of a vocabulary are dense)",
                             token, id, kMaxIdGap, id_token.size()));
        if (id >= id_token.size()) {
            id_token.resize(id + 1);
            id_bytes.resize(id + 1);
            id_flags.resize(id + 1, 0);
        }
        id_token[id] = token;
        std::string bytes;
        id_bytes[id] = byte_level::token_to_bytes(token, bytes) ? bytes : token;
        id_flags[id] = static_cast<std::uint8_t>(kKnown | (special ? kSpecial : 0));
    }

    void load_normalizer(const json& n)
    {
        if (n.is_null()) return;
        const std::string type = n.value("type", "");
        if (type == "Sequence") {
            for (const json& child : n.at("normalizers")) load_normalizer(child);
            return;
        }
        fail(fmt::format("normalizer type \"{}\" is not supported (only an empty Sequence or null)", type));
    }

    static SplitBehavior parse_behavior(const std::string& b, const Impl& self)
    {
        if (b == "Removed") return SplitBehavior::Removed;
        if (b == "Isolated") return SplitBehavior::Isolated;
        if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
        if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
        if (b == "Contiguous") return SplitBehavior::Contiguous;
        self.fail(fmt::format("pre_tokenizer Split behavior \"{}\" is unknown", b));
    }

    void load_pre_tokenizer(const json& p, bool& seen_byte_level)
    {
        const std::string type = p.value("type", "");
        if (seen_byte_level)
            fail(fmt::format("pre_tokenizer step \"{}\" after ByteLevel is not supported (ByteLevel must be last)",
                             type));
        if (type == "Sequence") {
            for (const json& child : p.at("pretokenizers")) load_pre_tokenizer(child, seen_byte_level);
        } else if (type == "Split") {
            const json& pattern = p.at("pattern");
            const SplitBehavior behavior = parse_behavior(p.at("behavior").get<std::string>(), *this);
            const bool invert = p.value("invert", false);
            if (pattern.contains("Regex")) {
                try {
                    pre_tokenizer.add(make_regex_split(pattern.at("Regex").get<std::string>(), behavior, invert));
                } catch (const TokenizerError& e) {
                    fail(fmt::format("pre_tokenizer Split: {}", e.what()));
                }
            } else if (pattern.contains("String")) {
                pre_tokenizer.add(make_string_split(pattern.at("String").get<std::string>(), behavior, invert));
            } else {
                fail("pre_tokenizer Split pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
            }
        } else if (type == "Digits") {
            pre_tokenizer.add(make_digits(p.value("individual_digits", false)));
        } else if (type == "ByteLevel") {
            if (p.value("add_prefix_space", false))
                fail("pre_tokenizer ByteLevel add_prefix_space=true is not supported");
            if (p.value("use_regex", true))
                pre_tokenizer.add(make_regex_split(kGpt2Pattern, SplitBehavior::Isolated, false));
            seen_byte_level = true;
        } else {
            fail(fmt::format("pre_tokenizer type \"{}\" is not supported (supported: Sequence, Split, Digits, "
                             "ByteLevel)",
                             type));
        }
    }

    void load_model(const json& m, TokenizerJson& file)
    {
        const std::string type = m.value("type", "BPE");
        if (type != "BPE") fail(fmt::format("model type \"{}\" is not supported (only byte-level BPE)", type));
        if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
            fail("model.dropout is not supported");
        for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (m.contains(key) && !m[key].is_null() && !m[key].get<std::string>().empty())
                fail(fmt::format("model.{} is not supported", key));

        if (!file.has_vocab) fail("model.vocab is missing or not an object");
        std::uint32_t max_id = 0;
        for (const auto& [token, id] : file.vocab) max_id = std::max(max_id, id);
        if (max_id >= file.vocab.size() + kMaxIdGap)
            fail(fmt::format("model.vocab: id {} is more than {} past its {} entries (ids of a vocabulary are dense)", max_id,
                             kMaxIdGap, file.vocab.size()));
        id_token.resize(file.vocab.empty() ? 0 : max_id + 1);
        id_bytes.resize(id_token.size());
        id_flags.resize(id_token.size(), 0);
        token_ids.reserve(file.vocab.size() + 1024);
        for (auto& [token, id] : file.vocab) {
            set_token(id, token, false);
            token_ids[std::move(token)] = id;
        }

        std::optional<std::uint32_t> unk_id;
        if (m.contains("unk_token") && !m["unk_token"].is_null()) {
            const std::string unk = m["unk_token"].get<std::string>();
            auto it = token_ids.find(unk);
            if (it == token_ids.end()) fail(fmt::format("model.unk_token \"{}\" is not in the vocabulary", unk));
            unk_id = it->second;
        }
        std::vector<std::uint32_t> byte_ids(256, BpeModel::kNone);
        bool missing_byte = false;
        for (int b = 0; b < 256; ++b) {
            auto it = token_ids.find(byte_level::byte_to_utf8()[static_cast<std::size_t>(b)]);
            if (it != token_ids.end()) byte_ids[static_cast<std::size_t>(b)] = it->second;
            else {
                missing_byte = true;
                if (unk_id) byte_ids[static_cast<std::size_t>(b)] = *unk_id;
            }
        }
        if (missing_byte && m.value("byte_fallback", false))
            fail("model.byte_fallback with single-byte tokens missing from the vocabulary is not supported");
        if (missing_byte && unk_id && m.value("fuse_unk", false))
            fail("model.fuse_unk with single-byte tokens missing from the vocabulary is not supported");
        bpe.set_byte_ids(byte_ids);

        if (!file.has_merges) fail("model.merges is missing or not an array");
        std::string merged;
        for (std::size_t index = 0; index < file.merges.size(); ++index) {
            const auto& [left, right] = file.merges[index];
            auto l = token_ids.find(left), r = token_ids.find(right);
            for (auto [it, name] : {std::pair{l, &left}, std::pair{r, &right}})
                if (it == token_ids.end())
                    fail(fmt::format("model.merges[{}] names \"{}\", which is not in the vocabulary", index, *name));
            merged.assign(left).append(right);
            auto c = token_ids.find(merged);
            if (c == token_ids.end())
                fail(fmt::format("model.merges[{}]: the merged token \"{}\" is not in the vocabulary", index, merged));
            bpe.add_merge(l->second, r->second, c->second);
        }
        if (m.value("ignore_merges", false)) {
            std::unordered_map<std::string, std::uint32_t> by_bytes;
            for (const auto& [token, id] : token_ids) {
                std::string bytes;
                if (byte_level::token_to_bytes(token, bytes)) by_bytes.emplace(bytes, id);
            }
            bpe.set_whole_piece_lookup(std::move(by_bytes));
        }
    }

    void load_added_tokens(const json& list)
    {
        if (list.is_null()) return;
        std::vector<AddedToken> tokens;
        for (const json& t : list) {
            AddedToken a;
            a.id = t.at("id").get<std::uint32_t>();
            a.content = t.at("content").get<std::string>();
            a.single_word = t.value("single_word", false);
            a.lstrip = t.value("lstrip", false);
            a.rstrip = t.value("rstrip", false);
            a.special = t.value("special", false);
            a.normalized = t.value("normalized", !a.special);
            if (a.content.empty()) fail(fmt::format("added token {} has empty content", a.id));
            if (unicode::find_invalid_utf8(a.content) != a.content.size())
                fail(fmt::format("added token {} is not valid UTF-8", a.id));
            token_ids[a.content] = a.id;
            set_token(a.id, a.content, a.special);
            tokens.push_back(std::move(a));
        }
        raw_matcher.build(tokens, false);
        normalized_matcher.build(tokens, true);
    }

    std::vector<std::uint32_t> special_ids(const json& special_tokens, const std::string& name) const
    {
        if (!special_tokens.contains(name))
            fail(fmt::format("post_processor TemplateProcessing names special token \"{}\" not in special_tokens",
                             name));
        return special_tokens.at(name).at("ids").get<std::vector<std::uint32_t>>();
    }

    void load_post_processor(const json& p)
    {
        if (p.is_null()) return;
        const std::string type = p.value("type", "");
        if (type == "ByteLevel") return;  // only adjusts offsets, adds no tokens
        if (type == "Sequence") {
            for (const json& child : p.at("processors")) load_post_processor(child);
            return;
        }
        if (type != "TemplateProcessing")
            fail(fmt::format("post_processor type \"{}\" is not supported (ByteLevel, TemplateProcessing, Sequence)",
                             type));
        if (has_post_template) fail("post_processor: more than one TemplateProcessing");
        has_post_template = true;
        const json& special = p.value("special_tokens", json::object());
        for (const json& item : p.at("single")) {
            PostItem pi;
            if (item.contains("Sequence")) {
                if (item["Sequence"].value("id", "A") != "A")
                    fail("post_processor TemplateProcessing single uses a sequence other than $A");
                pi.is_sequence = true;
            } else if (item.contains("SpecialToken")) {
                pi.ids = special_ids(special, item["SpecialToken"].at("id").get<std::string>());
            } else {
                fail("post_processor TemplateProcessing has an item that is neither Sequence nor SpecialToken");
            }
            post_single.push_back(std::move(pi));
        }
    }

    void load_decoder(const json& d)
    {
        const std::string type = d.is_null() ? "null" : d.value("type", "");
        if (type == "ByteLevel") return;
        if (type == "Sequence") {
            const json& list = d.at("decoders");
            if (list.size() == 1) return load_decoder(list[0]);
        }
        fail(fmt::format("decoder \"{}\" is not supported (only ByteLevel)", type));
    }

    static std::string token_content(const json& v)
    {
        if (v.is_string()) return v.get<std::string>();
        if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
        return {};
    }

    void load_config(const std::filesystem::path& dir)
    {
        const auto config_path = dir / "tokenizer_config.json";
        if (std::filesystem::exists(config_path)) {
            const json c = parse_json(config_path);
            auto fail_config = [&](const std::string& what) {
                throw TokenizerError(fmt::format("{}: {}", config_path.string(), what));
            };
            try {
                const std::string cls = c.value("tokenizer_class", "");
                const bool llama = cls == "LlamaTokenizerFast" || cls == "LlamaTokenizer";
                transformers_bos_eos = llama;
                add_bos = c.value("add_bos_token", llama);
                add_eos = c.value("add_eos_token", false);
                if (c.contains("bos_token")) bos_token = token_content(c["bos_token"]);
                if (c.contains("eos_token")) eos_token = token_content(c["eos_token"]);
                if (c.contains("chat_template")) {
                    const json& t = c["chat_template"];
                    if (t.is_string()) {
                        chat_template = t.get<std::string>();
                    } else if (t.is_array()) {
                        for (const json& named : t)
                            if (chat_template.empty() || named.value("name", "") == "default")
                                chat_template = named.at("template").get<std::string>();
                    } else if (!t.is_null()) {
                        fail_config("chat_template is neither a string nor a list of named templates");
                    }
                }
            } catch (const json::exception& e) {
                fail_config(e.what());
            }
        }
        const auto jinja_path = dir / "chat_template.jinja";
        if (chat_template.empty() && std::filesystem::exists(jinja_path)) chat_template = read_file(jinja_path);
        auto find_id = [&](const std::string& token) -> std::optional<std::uint32_t> {
            if (token.empty()) return std::nullopt;
            auto it = token_ids.find(token);
            if (it == token_ids.end()) return std::nullopt;
            return it->second;
        };
        bos_id = find_id(bos_token);
        eos_id = find_id(eos_token);
        if (transformers_bos_eos && add_bos && !bos_id)
            fail(fmt::format("add_bos_token is set but the bos token \"{}\" is not in the vocabulary", bos_token));
    }
};

Tokenizer Tokenizer::load(const std::string& dir_or_file)
{
    namespace fs = std::filesystem;
    fs::path file = dir_or_file;
    std::error_code ec;
    if (fs::is_directory(file, ec)) file /= "tokenizer.json";
    if (!fs::exists(file, ec)) throw TokenizerError(fmt::format("{}: no such file", file.string()));

    auto impl = std::make_shared<Impl>();
    impl->path = file.string();
    TokenizerJson parsed = read_tokenizer_json(read_file(file), impl->path);
    const json& root = parsed.root;
    try {
        if (!root.is_object()) impl->fail("top level is not an object");
        for (const char* key : {"truncation", "padding"})
            if (root.contains(key) && !root[key].is_null())
                impl->fail(fmt::format("\"{}\" is not supported (must be null)", key));
        impl->load_normalizer(root.value("normalizer", json()));
        bool seen_byte_level = false;
        impl->load_pre_tokenizer(root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json::object(),
                                 seen_byte_level);
        if (!seen_byte_level) impl->fail("pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
        impl->load_model(root.at("model"), parsed);
        impl->load_added_tokens(root.value("added_tokens", json()));
        impl->load_post_processor(root.value("post_processor", json()));
        impl->load_decoder(root.value("decoder", json()));
    } catch (const json::exception& e) {
        impl->fail(fmt::format("unexpected structure: {}", e.what()));
    }
    impl->load_config(file.parent_path());
    engine_log().info("tokenizer {}: {} tokens, {} merges, chat template {}", impl->path, impl->id_token.size(),
                      impl->bpe.merge_count(), impl->chat_template.empty() ? "absent" : "present");
    return Tokenizer(std::move(impl));
}

std::vector<std::uint32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const
{
    const Impl& im = *m_impl;
    if (text.size() >= 0xFFFFFFFFu) throw TokenizerError("text to encode is larger than 4 GiB");
    if (const std::size_t bad = unicode::find_invalid_utf8(text); bad != text.size())
        throw TokenizerError(fmt::format("text to encode is not valid UTF-8 (byte {})", bad));

    std::vector<std::uint32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    std::vector<Segment> raw, segments;
    im.raw_matcher.split(text, 0, text.size(), raw);
    for (const Segment& s : raw) {
        if (s.is_token || im.normalized_matcher.empty()) segments.push_back(s);
        else im.normalized_matcher.split(text, s.begin, s.end, segments);
    }
    std::vector<Piece> pieces;
    const BpeModel::CacheLease cache(im.bpe);
    for (const Segment& s : segments) {
        if (s.is_token) {
            ids.push_back(s.id);
            continue;
        }
        const std::string_view segment = text.substr(s.begin, s.end - s.begin);
        im.pre_tokenizer.run(segment, pieces);
        for (const Piece& p : pieces) im.bpe.encode_piece(segment.substr(p.begin, p.end - p.begin), ids, cache.get());
    }
    if (add_special_tokens && im.has_post_template) {
        std::vector<std::uint32_t> out;
        for (const PostItem& item : im.post_single) {
            if (item.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
            else out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
        return out;
    }
    return ids;
}

std::vector<std::uint32_t> Tokenizer::encode_with_bos(std::string_view text) const
{
    const Impl& im = *m_impl;
    if (!im.transformers_bos_eos) return encode(text, true);
    std::vector<std::uint32_t> ids;
    if (im.add_bos && im.bos_id) ids.push_back(*im.bos_id);
    const std::vector<std::uint32_t> body = encode(text, false);
    ids.insert(ids.end(), body.begin(), body.end());
    if (im.add_eos && im.eos_id) ids.push_back(*im.eos_id);
    return ids;
}

std::string Tokenizer::decode(std::span<const std::uint32_t> ids, bool skip_special_tokens) const
{
    const Impl& im = *m_impl;
    std::string bytes;
    for (std::uint32_t id : ids) {
        if (id >= im.id_flags.size() || !(im.id_flags[id] & Impl::kKnown)) continue;
        if (skip_special_tokens && (im.id_flags[id] & Impl::kSpecial)) continue;
        bytes += im.id_bytes[id];
    }
    return unicode::decode_utf8_lossy(bytes);
}

bool Tokenizer::is_known(std::uint32_t id) const
{
    return id < m_impl->id_flags.size() && (m_impl->id_flags[id] & Impl::kKnown);
}

bool Tokenizer::is_special(std::uint32_t id) const
{
    return is_known(id) && (m_impl->id_flags[id] & Impl::kSpecial);
}

std::string Tokenizer::token_to_piece(std::uint32_t id) const
{
    return is_known(id) ? m_impl->id_bytes[id] : std::string();
}

std::string Tokenizer::id_to_token(std::uint32_t id) const
{
    return is_known(id) ? m_impl->id_token[id] : std::string();
}

std::optional<std::uint32_t> Tokenizer::token_to_id(std::string_view token) const
{
    auto it = m_impl->token_ids.find(std::string(token));
    if (it == m_impl->token_ids.end()) return std::nullopt;
    return it->second;
}

std::uint32_t Tokenizer::vocab_size() const { return static_cast<std::uint32_t>(m_impl->id_token.size()); }
std::optional<std::uint32_t> Tokenizer::bos_id() const { return m_impl->bos_id; }
std::optional<std::uint32_t> Tokenizer::eos_id() const { return m_impl->eos_id; }
const std::string& Tokenizer::bos_token() const { return m_impl->bos_token; }
const std::string& Tokenizer::eos_token() const { return m_impl->eos_token; }
const std::string& Tokenizer::chat_template() const { return m_impl->chat_template; }
const std::string& Tokenizer::path() const { return m_impl->path; }

}  // namespace moelens
