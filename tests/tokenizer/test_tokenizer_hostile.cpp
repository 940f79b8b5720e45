// tokenizer.json files the tokenizer must refuse (each a TokenizerError naming the
// file and what is wrong), inputs that must stay bounded, and the pre-tokenizer
// split behaviours on small synthetic files.
#include <chrono>
#include <fstream>
#include <string>

#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "moelens/tokenizer.h"
#include "tokenizer/pre_tokenizer.h"

using nlohmann::json;

namespace {

// A tiny byte-level BPE file: "a", "b", "c", "Ġ" and "ab", one merge "a b".
json tiny_tokenizer()
{
    return json::parse(R"({
      "version": "1.0", "truncation": null, "padding": null, "added_tokens": [
        {"id": 6, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
         "normalized": false, "special": true}],
      "normalizer": null,
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\s+|[a-z]+"}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
      "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
      "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                "vocab": {"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "ba": 5},
                "merges": ["a b"]}})");
}

class TempTokenizer {
public:
    explicit TempTokenizer(const std::string& text)
    {
        path = m_dir.filePath("tokenizer.json").toStdString();
        std::ofstream(path, std::ios::binary) << text;
    }
    explicit TempTokenizer(const json& j) : TempTokenizer(j.dump()) {}
    std::string path;

private:
    QTemporaryDir m_dir;
};

void expect_load_error(const std::string& text, const std::string& needle)
{
    TempTokenizer t(text);
    try {
        moelens::Tokenizer::load(t.path);
    } catch (const moelens::TokenizerError& e) {
        const std::string what = e.what();
        QVERIFY2(what.find(needle) != std::string::npos, ("message: " + what + "; expected: " + needle).c_str());
        QVERIFY2(what.find(t.path) != std::string::npos, ("message does not name the file: " + what).c_str());
        return;
    }
    QFAIL(("loaded without error; expected: " + needle).c_str());
}

void expect_load_error(const json& j, const std::string& needle) { expect_load_error(j.dump(), needle); }

std::vector<std::string> pieces(const moelens::tokenizer::PreTokenizer& pre, const std::string& text)
{
    std::vector<moelens::tokenizer::Piece> ps;
    pre.run(text, ps);
    std::vector<std::string> out;
    for (const auto& p : ps) out.push_back(text.substr(p.begin, p.end - p.begin));
    return out;
}

using Strings = std::vector<std::string>;

}  // namespace

class TestTokenizerHostile : public QObject {
    Q_OBJECT

private slots:
    void tinyTokenizerWorks()
    {
        TempTokenizer t(tiny_tokenizer());
        const auto tok = moelens::Tokenizer::load(t.path);
        QCOMPARE(tok.encode("ab ba<s>"), (std::vector<std::uint32_t>{4, 3, 1, 0, 6}));
        QCOMPARE(tok.decode(std::vector<std::uint32_t>{4, 3, 1, 0, 6, 99}), std::string("ab ba<s>"));
        QCOMPARE(tok.decode(std::vector<std::uint32_t>{4, 6}, true), std::string("ab"));
        QCOMPARE(tok.encode("xab"), (std::vector<std::uint32_t>{4}));  // "x" has no token: dropped, as the reference does
        QVERIFY(!tok.bos_id());  // no tokenizer_config.json
        QCOMPARE(tok.encode_with_bos("ab"), (std::vector<std::uint32_t>{4}));
    }

    void refusesBrokenFiles()
    {
        expect_load_error(std::string("{not json"), "not valid JSON");
        expect_load_error(std::string("[]"), "top level is not an object");

        json j = tiny_tokenizer();
        j["model"]["type"] = "WordPiece";
        expect_load_error(j, "model type \"WordPiece\" is not supported");

        j = tiny_tokenizer();
        j["model"]["merges"] = {"a b", "a c"};
        j["model"]["vocab"].erase("c");
        expect_load_error(j, "model.merges[1] names \"c\", which is not in the vocabulary");

        j = tiny_tokenizer();
        j["model"]["merges"] = {"b c"};
        expect_load_error(j, "model.merges[0]: the merged token \"bc\" is not in the vocabulary");

        j = tiny_tokenizer();
        j["model"]["merges"] = {"abc"};
        expect_load_error(j, "is not two tokens separated by one space");

        j = tiny_tokenizer();
        j["model"]["merges"] = json::parse(R"([["b", "a"]])");  // the pair-array form
        TempTokenizer pairs(j);
        QCOMPARE(moelens::Tokenizer::load(pairs.path).encode("ba"), (std::vector<std::uint32_t>{5}));

        j = tiny_tokenizer();
        j["normalizer"] = json::parse(R"({"type": "NFKC"})");
        expect_load_error(j, "normalizer type \"NFKC\" is not supported");

        j = tiny_tokenizer();
        j["pre_tokenizer"]["pretokenizers"][0] = json::parse(R"({"type": "Whitespace"})");
        expect_load_error(j, "pre_tokenizer type \"Whitespace\" is not supported");

        j = tiny_tokenizer();
        j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
        expect_load_error(j, "add_prefix_space=true is not supported");

        j = tiny_tokenizer();
        j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Isolated"})");
        expect_load_error(j, "no ByteLevel step");

        j = tiny_tokenizer();
        j["decoder"] = json::parse(R"({"type": "WordPiece"})");
        expect_load_error(j, "decoder \"WordPiece\" is not supported");

        j = tiny_tokenizer();
        j["post_processor"] = json::parse(R"({"type": "RobertaProcessing"})");
        expect_load_error(j, "post_processor type \"RobertaProcessing\" is not supported");

        j = tiny_tokenizer();
        j["model"]["dropout"] = 0.1;
        expect_load_error(j, "model.dropout is not supported");

        try {
            moelens::Tokenizer::load("/nonexistent/dir/tokenizer.json");
            QFAIL("loaded a missing file");
        } catch (const moelens::TokenizerError& e) {
            QVERIFY(std::string(e.what()).find("/nonexistent/dir/tokenizer.json: no such file") != std::string::npos);
        }
    }

    void refusesBadRegexes()
    {
        const std::pair<const char*, const char*> cases[] = {
            {"[a-", "unterminated character class"},
            {"(?<=a)b", "look-behind (unsupported)"},
            {"(a)\\1", "back-reference"},
            {"(?i)abc", "inline option group"},
            {"a++", "possessive quantifier"},
            {"\\p{Greek}", "unsupported property \\p{Greek}"},
            {"(ab", "missing ')'"},
            {"ab)", "unbalanced ')'"},
            {"(a*)*", "can match empty"},
            {"[[:alpha:]]", "nested class or POSIX bracket"},
        };
        for (const auto& [pattern, needle] : cases) {
            json j = tiny_tokenizer();
            j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern;
            expect_load_error(j, needle);
        }
    }

    // A catastrophic pattern is stopped by the step budget: an error, at once.
    void catastrophicRegexIsBounded()
    {
        json j = tiny_tokenizer();
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a|aa)+c|\\s+|[a-z]";
        TempTokenizer t(j);
        const auto tok = moelens::Tokenizer::load(t.path);
        QCOMPARE(tok.encode("aac"), (std::vector<std::uint32_t>{0, 0, 2}));
        const auto start = std::chrono::steady_clock::now();
        QVERIFY_THROWS_EXCEPTION(moelens::TokenizerError, tok.encode(std::string(60, 'a')));
        QVERIFY(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    }

    // A 100 MB "word" has no split point: the pipeline scans it in linear time and
    // the BPE stage refuses it instead of allocating gigabytes.
    void hugeSingleWordIsRefusedQuickly()
    {
        const auto tok = moelens::Tokenizer::load(MOELENS_RESOURCES_DIR "/tokenizer");
        const std::string word(100u << 20, 'a');
        const auto start = std::chrono::steady_clock::now();
        try {
            tok.encode(word);
            QFAIL("a 100 MB word was encoded");
        } catch (const moelens::TokenizerError& e) {
            QVERIFY2(std::string(e.what()).find("exceeds the BPE limit") != std::string::npos, e.what());
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        qInfo("100 MB word refused after %.2f s", secs);
        // Long words under the limit still encode (O(n log n) merge loop).
        const std::string long_word(200000, 'a');
        QVERIFY(!tok.encode(long_word).empty());
    }

    // The split behaviours, on the example of tokenizers' documentation.
    void splitBehaviours()
    {
        using moelens::tokenizer::SplitBehavior;
        auto run = [](SplitBehavior b, bool invert = false) {
            moelens::tokenizer::PreTokenizer pre;
            pre.add(moelens::tokenizer::make_regex_split("-", b, invert));
            return pieces(pre, "the-final--countdown");
        };
        QCOMPARE(run(SplitBehavior::Removed), (Strings{"the", "final", "countdown"}));
        QCOMPARE(run(SplitBehavior::Isolated), (Strings{"the", "-", "final", "-", "-", "countdown"}));
        QCOMPARE(run(SplitBehavior::MergedWithPrevious), (Strings{"the-", "final-", "-", "countdown"}));
        QCOMPARE(run(SplitBehavior::MergedWithNext), (Strings{"the", "-final", "-", "-countdown"}));
        QCOMPARE(run(SplitBehavior::Contiguous), (Strings{"the", "-", "final", "--", "countdown"}));
        QCOMPARE(run(SplitBehavior::Removed, true), (Strings{"-", "-", "-"}));

        moelens::tokenizer::PreTokenizer literal;
        literal.add(moelens::tokenizer::make_string_split("--", SplitBehavior::Isolated, false));
        QCOMPARE(pieces(literal, "a--b---c"), (Strings{"a", "--", "b", "--", "-c"}));

        moelens::tokenizer::PreTokenizer digits, runs;
        digits.add(moelens::tokenizer::make_digits(true));
        runs.add(moelens::tokenizer::make_digits(false));
        QCOMPARE(pieces(digits, "ab123c٣4"), (Strings{"ab", "1", "2", "3", "c", "٣", "4"}));
        QCOMPARE(pieces(runs, "ab123c٣4"), (Strings{"ab", "123", "c", "٣4"}));

        // Each step sees only its piece: (?!\S) cannot look into the next piece.
        moelens::tokenizer::PreTokenizer two;
        two.add(moelens::tokenizer::make_regex_split("\\p{N}{1,3}", SplitBehavior::Isolated, false));
        two.add(moelens::tokenizer::make_regex_split("\\s+(?!\\S)|\\s+|[a-z]+", SplitBehavior::Isolated, false));
        QCOMPARE(pieces(two, "abc   123"), (Strings{"abc", "   ", "123"}));
        QCOMPARE(pieces(two, "abc   x"), (Strings{"abc", "  ", " ", "x"}));
    }

    // DeepSeek-V2's tokenizer.json splits differently from V3 (newlines first, a long
    // Latin class with an optional leading space, `\s+$`, CJK and Hangul ranges, then
    // single digits): the same loader interprets it.
    void deepSeekV2StylePipeline()
    {
        std::ifstream in(MOELENS_RESOURCES_DIR "/tokenizer/tokenizer.json");
        json j = json::parse(in);
        j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": "[\r\n]"}, "behavior": "Isolated", "invert": false},
          {"type": "Split", "pattern": {"Regex": "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-Ֆ]+"},
           "behavior": "Isolated", "invert": false},
          {"type": "Split", "pattern": {"Regex": "\\s?[!-/:-~！-／：-～‘-‟　-。]+"}, "behavior": "Isolated", "invert": false},
          {"type": "Split", "pattern": {"Regex": "\\s+$"}, "behavior": "Isolated", "invert": false},
          {"type": "Split", "pattern": {"Regex": "[一-龥ࠀ-一가-퟿]+"}, "behavior": "Isolated", "invert": false},
          {"type": "Digits", "individual_digits": true},
          {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})");
        TempTokenizer t(j);
        const auto tok = moelens::Tokenizer::load(t.path);
        const std::string text = "Hello world 123\nÀ bientôt, 你好  ";
        auto piece_texts = [&](const std::vector<std::uint32_t>& ids) {
            Strings out;
            for (std::uint32_t id : ids) out.push_back(tok.token_to_piece(id));
            return out;
        };
        const auto ids = tok.encode(text);
        QCOMPARE(tok.decode(ids), text);
        // Digits come out one by one (V3 groups up to three).
        const Strings pieces = piece_texts(tok.encode(" 123"));
        QCOMPARE(pieces, (Strings{" ", "1", "2", "3"}));
        QCOMPARE(piece_texts(moelens::Tokenizer::load(MOELENS_RESOURCES_DIR "/tokenizer").encode(" 123")),
                 (Strings{" ", "123"}));
    }

    void addedTokenFlags()
    {
        json j = tiny_tokenizer();
        j["added_tokens"] = json::parse(R"([
          {"id": 6, "content": "<s>", "lstrip": true, "rstrip": true, "single_word": false, "normalized": false, "special": true},
          {"id": 7, "content": "ab", "lstrip": false, "rstrip": false, "single_word": true, "normalized": true, "special": false}])");
        TempTokenizer t(j);
        const auto tok = moelens::Tokenizer::load(t.path);
        // lstrip/rstrip swallow the spaces around <s>.
        QCOMPARE(tok.encode("a  <s>  b"), (std::vector<std::uint32_t>{0, 6, 1}));
        // single_word: "ab" inside a word is not the added token.
        QCOMPARE(tok.encode("ab"), (std::vector<std::uint32_t>{7}));
        QCOMPARE(tok.encode("cab"), (std::vector<std::uint32_t>{2, 4}));
    }
};

QTEST_GUILESS_MAIN(TestTokenizerHostile)
#include "test_tokenizer_hostile.moc"
