// Every golden produced by Hugging Face tokenizers 0.22.2 on the DeepSeek-V3
// tokenizer (see tests/fixtures/tokenizer/ and /work/shared/tokenizer/README.md):
// encode, encode with BOS, decode (with and without special tokens), decode-only
// cases with invalid UTF-8, and the streaming detokenizer against decode().
#include <atomic>
#include <fstream>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include <QtTest>
#include <nlohmann/json.hpp>

#include "moelens/tokenizer.h"
#include "tokenizer/unicode.h"

using nlohmann::json;

namespace {

std::vector<json> read_jsonl(const std::string& path)
{
    std::ifstream in(path);
    std::vector<json> out;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(json::parse(line));
    return out;
}

std::string describe(const std::vector<std::uint32_t>& got, const std::vector<std::uint32_t>& want)
{
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    return "first difference at index " + std::to_string(i) + ": got " +
           (i < got.size() ? std::to_string(got[i]) : "<end>") + ", want " +
           (i < want.size() ? std::to_string(want[i]) : "<end>") + " (sizes " + std::to_string(got.size()) + " vs " +
           std::to_string(want.size()) + ")";
}

}  // namespace

class TestTokenizerGolden : public QObject {
    Q_OBJECT

private:
    std::optional<moelens::Tokenizer> m_tok;

private slots:
    void initTestCase()
    {
        m_tok = moelens::Tokenizer::load(MOELENS_RESOURCES_DIR "/tokenizer");
        QCOMPARE(m_tok->vocab_size(), 128815u);
        QCOMPARE(m_tok->bos_id().value_or(99), 0u);
        QCOMPARE(m_tok->eos_id().value_or(99), 1u);
        QVERIFY(!m_tok->chat_template().empty());
    }

    void encodeGolden()
    {
        const auto cases = read_jsonl(MOELENS_FIXTURES_DIR "/tokenizer/encode_golden.jsonl");
        QCOMPARE(cases.size(), std::size_t{189});
        int failures = 0;
        for (std::size_t n = 0; n < cases.size(); ++n) {
            const json& c = cases[n];
            const std::string text = c["text"];
            const auto want = c["ids"].get<std::vector<std::uint32_t>>();
            auto check = [&](const char* what, const std::vector<std::uint32_t>& got,
                             const std::vector<std::uint32_t>& expected) {
                if (got == expected) return;
                ++failures;
                qWarning("case %zu %s (%s): %s", n, what, json(text).dump().substr(0, 120).c_str(),
                         describe(got, expected).c_str());
            };
            check("ids", m_tok->encode(text, false), want);
            check("ids_with_special", m_tok->encode(text, true), c["ids_with_special"].get<std::vector<std::uint32_t>>());
            check("ids_with_bos", m_tok->encode_with_bos(text), c["ids_with_bos"].get<std::vector<std::uint32_t>>());
            for (auto [key, skip] : {std::pair{"decoded", false}, std::pair{"decoded_skip_special", true}}) {
                const std::string got = m_tok->decode(want, skip);
                if (got != c[key].get<std::string>()) {
                    ++failures;
                    qWarning("case %zu %s: got %s want %s", n, key, json(got).dump().c_str(), c[key].dump().c_str());
                }
            }
        }
        QCOMPARE(failures, 0);
    }

    void decodeGolden()
    {
        const auto cases = read_jsonl(MOELENS_FIXTURES_DIR "/tokenizer/decode_golden.jsonl");
        QCOMPARE(cases.size(), std::size_t{28});
        for (const json& c : cases) {
            const std::string got =
                m_tok->decode(c["ids"].get<std::vector<std::uint32_t>>(), c["skip_special_tokens"].get<bool>());
            QVERIFY2(got == c["decoded"].get<std::string>(),
                     (c["name"].get<std::string>() + ": got " + json(got).dump() + " want " + c["decoded"].dump()).c_str());
        }
    }

    // Streaming every golden id list one token at a time gives decode()'s text, and
    // no chunk ever ends inside a UTF-8 character.
    void streamingMatchesDecode()
    {
        std::vector<json> cases = read_jsonl(MOELENS_FIXTURES_DIR "/tokenizer/encode_golden.jsonl");
        for (const json& c : read_jsonl(MOELENS_FIXTURES_DIR "/tokenizer/decode_golden.jsonl")) cases.push_back(c);
        for (const json& c : cases) {
            const auto ids = c["ids"].get<std::vector<std::uint32_t>>();
            for (bool skip : {false, true}) {
                moelens::StreamingDetokenizer stream(*m_tok, skip);
                std::string all;
                for (std::uint32_t id : ids) {
                    const std::string chunk = stream.push(id);
                    QCOMPARE(moelens::tokenizer::unicode::find_invalid_utf8(chunk), chunk.size());
                    all += chunk;
                }
                all += stream.finish();
                QCOMPARE(all, m_tok->decode(ids, skip));
            }
        }
    }

    // A character split over several tokens comes out whole, once, when its last
    // byte arrives.
    void streamingHoldsPartialCharacter()
    {
        const std::string text = "a🫨b";
        const auto ids = m_tok->encode(text);
        moelens::StreamingDetokenizer stream(*m_tok);
        std::vector<std::string> chunks;
        for (std::uint32_t id : ids) chunks.push_back(stream.push(id));
        chunks.push_back(stream.finish());
        std::string joined;
        for (const auto& c : chunks) {
            QVERIFY(c.find("\xEF\xBF\xBD") == std::string::npos);
            joined += c;
        }
        QCOMPARE(joined, text);
        QVERIFY(ids.size() > 3);  // the emoji really is split over byte tokens

        // A truncated character at the end becomes one U+FFFD, only at finish().
        moelens::StreamingDetokenizer cut(*m_tok);
        const auto emoji = m_tok->encode("🫨");
        QVERIFY(emoji.size() >= 2);
        QCOMPARE(cut.push(emoji[0]), std::string());
        QCOMPARE(cut.finish(), std::string("\xEF\xBF\xBD"));
    }

    // Byte-level BPE loses nothing: random mixes of tricky code points (controls,
    // combining marks, CJK, emoji, astral and unassigned code points, special-token
    // fragments) decode back to themselves, also when streamed.
    void randomRoundTrip()
    {
        const char32_t pool[] = {U'a', U'Z', U'0', U'9', U' ', U'\t', U'\n', U'\r', U'\0', U'\x85', U'\xA0', U'\u180E',
                                 U'\u200B', U'\u2028', U'\u3000', U'\uFEFF', U'\uFFFD', U'\uFFFE', U'é', U'\u0301',
                                 U'中', U'\u9FA6', U'の', U'ｶ', U'한', U'ا', U'\u0E01', U'٣', U'①', U'½', U'!', U'<',
                                 U'|', U'｜', U'▁', U'>', U'\'', U'"', U'\\', U'\U0001F600', U'\U0001FAE8',
                                 U'\U00031350', U'\U0001CC00', U'\U000E0041', U'\U0010FFFF', U'\U000F0000'};
        std::uint32_t state = 12345;
        auto next = [&]() { return state = state * 1664525u + 1013904223u; };
        for (int n = 0; n < 2000; ++n) {
            std::string text;
            const int len = static_cast<int>(next() >> 27);
            for (int k = 0; k < len; ++k)
                moelens::tokenizer::unicode::append_utf8(text, pool[(next() >> 8) % std::size(pool)]);
            if (next() % 8 == 0) text += "<｜User｜>";
            const auto ids = m_tok->encode(text);
            QCOMPARE(m_tok->decode(ids), text);
            moelens::StreamingDetokenizer stream(*m_tok);
            std::string streamed;
            for (std::uint32_t id : ids) streamed += stream.push(id);
            QCOMPARE(streamed + stream.finish(), text);
        }
    }

    // One tokenizer shared by threads: the one holding the piece cache and the ones
    // running uncached give the same ids.
    void concurrentEncode()
    {
        std::vector<std::string> texts;
        for (const json& c : read_jsonl(MOELENS_FIXTURES_DIR "/tokenizer/encode_golden.jsonl")) texts.push_back(c["text"]);
        std::vector<std::vector<std::uint32_t>> expected;
        for (const auto& t : texts) expected.push_back(m_tok->encode(t));
        std::atomic<int> mismatches{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&, t] {
                const moelens::Tokenizer copy = *m_tok;
                for (int rep = 0; rep < 5; ++rep)
                    for (std::size_t i = 0; i < texts.size(); ++i)
                        if ((t % 2 ? copy : *m_tok).encode(texts[i]) != expected[i]) ++mismatches;
            });
        for (auto& th : threads) th.join();
        QCOMPARE(mismatches.load(), 0);
    }

    void tokenAccessors()
    {
        QCOMPARE(m_tok->token_to_id("<｜User｜>").value_or(0), 128803u);
        QCOMPARE(m_tok->id_to_token(128803), std::string("<｜User｜>"));
        QVERIFY(!m_tok->is_special(128803));  // special=false in tokenizer.json
        QVERIFY(m_tok->is_special(0));
        QCOMPARE(m_tok->token_to_piece(223), m_tok->decode(std::vector<std::uint32_t>{223}));
        QCOMPARE(m_tok->token_to_piece(5000000), std::string());
        QVERIFY_THROWS_EXCEPTION(moelens::TokenizerError, m_tok->encode(std::string("bad \xFF byte")));
    }
};

QTEST_GUILESS_MAIN(TestTokenizerGolden)
#include "test_tokenizer_golden.moc"
