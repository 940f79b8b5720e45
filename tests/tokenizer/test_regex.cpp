// The pre-tokenizer regex engine: Oniguruma/Perl matching semantics for the subset
// tokenizer.json files use, over Unicode 16 tables (see engine/tokenizer/regex.h).
#include <string>
#include <vector>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <QtTest>

#include "moelens/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

using moelens::tokenizer::Regex;

namespace {

// All matches of `pattern` in `text`, leftmost-first, non-overlapping.
std::vector<std::string> matches(const std::string& pattern, const std::string& text)
{
    const Regex re(pattern);
    std::vector<std::string> out;
    std::size_t from = 0, b, e;
    while (from <= text.size() && re.search(text, from, b, e)) {
        out.push_back(text.substr(b, e - b));
        from = e > b ? e : e + 1;
    }
    return out;
}

std::string utf8(char32_t cp)
{
    std::string s;
    moelens::tokenizer::unicode::append_utf8(s, cp);
    return s;
}

using Strings = std::vector<std::string>;

// The DeepSeek-V3 word split (third Split of its tokenizer.json).
const std::string kV3 = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
                        " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

class TestRegex : public QObject {
    Q_OBJECT

private slots:
    void alternationIsLeftmostFirst()
    {
        QCOMPARE(matches("a|ab", "ab"), (Strings{"a"}));
        QCOMPARE(matches("ab|a", "ab"), (Strings{"ab"}));
        QCOMPARE(matches("x*y|x", "xxx"), (Strings{"x", "x", "x"}));
    }

    void quantifiers()
    {
        QCOMPARE(matches("\\p{N}{1,3}", "12345 6"), (Strings{"123", "45", "6"}));
        QCOMPARE(matches("a{2}", "aaaaa"), (Strings{"aa", "aa"}));
        QCOMPARE(matches("a{2,}", "a aaaa"), (Strings{"aaaa"}));
        QCOMPARE(matches("a+?", "aaa"), (Strings{"a", "a", "a"}));
        QCOMPARE(matches("<.+?>", "<a><b>"), (Strings{"<a>", "<b>"}));
        QCOMPARE(matches("(?:ab)+", "ababa ab"), (Strings{"abab", "ab"}));
        QCOMPARE(matches("a{,2}b", "aaab"), (Strings{"aab"}));
        QCOMPARE(matches("x{y", "x{y"), (Strings{"x{y"}));  // a brace that is no quantifier is literal
    }

    void lookAheadBacktracksIntoRuns()
    {
        QCOMPARE(matches("\\s+(?!\\S)|\\s+", "a   b"), (Strings{"  ", " "}));
        QCOMPARE(matches("\\s+(?!\\S)", "   "), (Strings{"   "}));
        QCOMPARE(matches("a(?=b)", "ab ac"), (Strings{"a"}));
        QCOMPARE(matches("^a|b$", "ab\nba"), (Strings{"a", "b"}));  // line anchors, as in Oniguruma
    }

    // \s is exactly White_Space, not PCRE's or JavaScript's notion.
    void whiteSpaceIsExact()
    {
        for (char32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u,
                            0x2029u, 0x202Fu, 0x205Fu, 0x3000u})
            QVERIFY2(matches("\\s", utf8(cp)).size() == 1, qPrintable(QString::number(cp, 16)));
        for (char32_t cp : {0x180Eu, 0x200Bu, 0x2060u, 0xFEFFu, 0x1Cu, 0x1Fu})
            QVERIFY2(matches("\\s", utf8(cp)).empty(), qPrintable(QString::number(cp, 16)));
        QCOMPARE(matches("\\S+", "a\u180Eb c"), (Strings{"a\u180Eb", "c"}));
    }

    // Categories come from Unicode 16: code points assigned in 15.0-16.0 are letters
    // and symbols (the system PCRE2, Unicode 14, calls them unassigned).
    void unicode16Categories()
    {
        using moelens::tokenizer::unicode::GeneralCategory;
        using moelens::tokenizer::unicode::general_category;
        QCOMPARE(general_category(0x1FAE8), GeneralCategory::So);  // SHAKING FACE, Unicode 15.0
        QCOMPARE(general_category(0x31350), GeneralCategory::Lo);  // CJK Ext. H, 15.0
        QCOMPARE(general_category(0x2EBF0), GeneralCategory::Lo);  // CJK Ext. I, 15.1
        QCOMPARE(general_category(0x1CC00), GeneralCategory::So);  // Symbols for Legacy Computing Suppl., 16.0
        QCOMPARE(general_category(0x10FFFF), GeneralCategory::Cn);
        QCOMPARE(general_category(U'é'), GeneralCategory::Ll);
        QCOMPARE(matches("\\p{L}+", "x\U00031350y"), (Strings{"x\U00031350y"}));
        QCOMPARE(matches("[^\\p{L}\\p{N}]+", "ab\U0001FAE8!1"), (Strings{"\U0001FAE8!"}));
        QCOMPARE(matches("\\P{L}", "a1"), (Strings{"1"}));
        QCOMPARE(matches("[一-龥]+", "中文\u9FA6"), (Strings{"中文"}));  // U+9FA6 lies just above the range
    }

    // Cross-check of the generated tables against an independent implementation: the
    // system PCRE2 (Unicode 14 in Debian 12) agrees on L/N/P/S/M/Z/C for every code
    // point it knows; only code points assigned since its Unicode version differ.
    void tablesAgreeWithPcre2()
    {
        using namespace moelens::tokenizer::unicode;
        const char* names[] = {"L", "N", "P", "S", "M", "Z", "C"};
        std::vector<pcre2_code*> res;
        int err;
        PCRE2_SIZE offset;
        for (const char* n : names) {
            const std::string p = std::string("^\\p{") + n + "}$";
            res.push_back(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.c_str()), PCRE2_ZERO_TERMINATED,
                                        PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr));
        }
        pcre2_code* unassigned = pcre2_compile(reinterpret_cast<PCRE2_SPTR>("^\\p{Cn}$"), PCRE2_ZERO_TERMINATED,
                                               PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
        pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
        auto pcre_matches = [&](pcre2_code* re, const std::string& s) {
            return pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, nullptr) >= 0;
        };
        int differences = 0, newer = 0;
        for (char32_t cp = 0; cp < 0x110000; ++cp) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            const std::string s = utf8(cp);
            const GeneralCategory gc = general_category(cp);
            if (pcre_matches(unassigned, s) && gc != GeneralCategory::Cn) {
                ++newer;
                continue;
            }
            for (std::size_t k = 0; k < res.size(); ++k) {
                const bool mine = (category_mask_for_name(names[k]) & category_bit(gc)) != 0;
                if (mine != pcre_matches(res[k], s) && ++differences < 10)
                    qWarning("U+%04X \\p{%s}: ours %d, PCRE2 %d", unsigned(cp), names[k], mine, !mine);
            }
        }
        pcre2_match_data_free(md);
        for (pcre2_code* re : res) pcre2_code_free(re);
        pcre2_code_free(unassigned);
        qInfo("%d code points assigned after the system PCRE2's Unicode version", newer);
        QCOMPARE(differences, 0);
        QVERIFY(newer < 20000);
    }

    void deepSeekV3WordSplit()
    {
        QCOMPARE(matches(kV3, "Hello, world!"), (Strings{"Hello", ",", " world", "!"}));
        QCOMPARE(matches(kV3, "don't .NET\n\nx"), (Strings{"don", "'t", " .", "NET", "\n\n", "x"}));
        QCOMPARE(matches(kV3, "a  \n  b"), (Strings{"a", "  \n", " ", " b"}));
        QCOMPARE(matches(kV3, "end \u0085"), (Strings{"end", " \u0085"}));
        QCOMPARE(matches(kV3, "e\u0301t\u0301"), (Strings{"e\u0301t\u0301"}));
    }

    void unsupportedSyntaxIsRefused()
    {
        for (const char* p : {"(?<=a)", "(?<name>a)", "(?>a)", "a*+", "\\1", "\\b", "\\h", "[a&&b]", "(?i)a",
                              "[", "(", ")", "*a", "a{3,1}", "\\p{Xx}"})
            QVERIFY_THROWS_EXCEPTION(moelens::TokenizerError, Regex{p});
        try {
            Regex bad("ab(?<=c)");
            QFAIL("accepted look-behind");
        } catch (const moelens::TokenizerError& e) {
            QVERIFY2(std::string(e.what()).find("look-behind (unsupported) at offset 2") != std::string::npos, e.what());
        }
    }

    void catastrophicPatternHitsBudget()
    {
        const Regex re("(a+)+b");
        std::size_t b, e;
        QVERIFY_THROWS_EXCEPTION(moelens::TokenizerError, re.search(std::string(40, 'a'), 0, b, e));
        QVERIFY(re.search("aaab", 0, b, e));
    }

    // A long run is matched in linear time without a stack entry per character.
    void longRunsAreLinear()
    {
        const std::string spaces(20u << 20, ' ');
        QCOMPARE(matches(kV3, spaces + "x"), (Strings{spaces.substr(1), " x"}));
    }
};

QTEST_GUILESS_MAIN(TestRegex)
#include "test_regex.moc"
