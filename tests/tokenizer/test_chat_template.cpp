// Chat templates: the DeepSeek-V3 template against chat_golden.json (rendered text
// and ids, made with @huggingface/jinja and checked against Python Jinja2 as
// transformers configures it), the DeepSeek-V2-Chat template against a
// hand-checked string, the Jinja features DeepSeek templates use, and hostile
// templates (each a TokenizerError naming line and column, never a hang).
#include <fstream>
#include <optional>
#include <string>

#include <QtTest>
#include <nlohmann/json.hpp>

#include "moelens/chat_template.h"
#include "moelens/tokenizer.h"

using moelens::ChatMessage;
using moelens::ChatTemplate;
using nlohmann::json;

namespace {

const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

// DeepSeek-V2-Chat's chat_template (tokenizer_config.json of deepseek-ai/DeepSeek-V2-Chat):
// "User: ...\n\nAssistant: ..." with system prompts in front.
const std::string kV2ChatTemplate =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

std::string render(const std::string& source, const std::string& messages_json = "[]", bool gen = false,
                   const std::string& extra = {})
{
    return ChatTemplate(source, kBos, kEos).render_json(messages_json, gen, extra);
}

// Renders and expects a TokenizerError whose message contains `needle`.
void expect_error(const std::string& source, const std::string& needle, const std::string& messages = "[]")
{
    try {
        render(source, messages);
    } catch (const moelens::TokenizerError& e) {
        const std::string what = e.what();
        QVERIFY2(what.find(needle) != std::string::npos, ("message: " + what + "; expected: " + needle).c_str());
        return;
    }
    QFAIL(("no error for template: " + source).c_str());
}

}  // namespace

class TestChatTemplate : public QObject {
    Q_OBJECT

private slots:
    void v3Golden()
    {
        const moelens::Tokenizer tok = moelens::Tokenizer::load(MOELENS_RESOURCES_DIR "/tokenizer");
        const ChatTemplate tmpl = ChatTemplate::from_tokenizer(tok);
        std::ifstream in(MOELENS_FIXTURES_DIR "/tokenizer/chat_golden.json");
        const json cases = json::parse(in);
        QCOMPARE(cases.size(), std::size_t{5});
        for (const json& c : cases) {
            const std::string rendered = tmpl.render_json(c["messages"].dump(), c["add_generation_prompt"].get<bool>());
            QVERIFY2(rendered == c["rendered"].get<std::string>(),
                     (c["name"].get<std::string>() + ": " + json(rendered).dump()).c_str());
            QCOMPARE(tok.encode(rendered, false), c["ids"].get<std::vector<std::uint32_t>>());
        }
    }

    // The typed API gives the same text as the JSON one, tool calls included.
    void v3TypedMessagesAndTools()
    {
        const moelens::Tokenizer tok = moelens::Tokenizer::load(MOELENS_RESOURCES_DIR "/tokenizer");
        const ChatTemplate tmpl = ChatTemplate::from_tokenizer(tok);
        std::vector<ChatMessage> messages = {{"system", "Be brief.", {}}, {"user", "Weather in Paris?", {}}};
        ChatMessage call{"assistant", std::nullopt, {{"function", "get_weather", "{\"city\": \"Paris\"}"}}};
        messages.push_back(call);
        messages.push_back({"tool", "{\"temp\": 21}", {}});
        const std::string expected =
            kBos + "Be brief.<｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
                   "<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>"
                   "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temp\": 21}<｜tool▁output▁end｜>"
                   "<｜tool▁outputs▁end｜>";
        QCOMPARE(tmpl.render(messages, true), expected);
        QCOMPARE(tmpl.render({{"user", "Hi", {}}}, true), kBos + "<｜User｜>Hi<｜Assistant｜>");
    }

    // Hand-checked against the V2 template's definition: system text and "\n\n",
    // "User: " + text + "\n\n", "Assistant: " + text + EOS, and "Assistant:" to prompt.
    void v2ChatTemplate()
    {
        const std::string messages = R"([{"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How are you?"}])";
        QCOMPARE(render(kV2ChatTemplate, messages, true),
                 kBos + "You are helpful.\n\nUser: Hi\n\nAssistant: Hello!" + kEos + "User: How are you?\n\nAssistant:");
        QCOMPARE(render(kV2ChatTemplate, R"([{"role": "user", "content": "x"}])", false), kBos + "User: x\n\n");
    }

    // trim_blocks + lstrip_blocks as transformers configures Jinja2, and the
    // explicit - and + markers.
    void whitespaceControl()
    {
        QCOMPARE(render("{% if true %}\nA\n{% endif %}\nB"), std::string("A\nB"));
        QCOMPARE(render("  {% if true %}x{% endif %}"), std::string("x"));  // lstrip_blocks
        QCOMPARE(render("a  {% if true %}x{% endif %}"), std::string("a  x"));  // not at a line start
        QCOMPARE(render("a  {%- if true -%}  x  {%- endif %}"), std::string("ax"));
        QCOMPARE(render("{{ 'a' }}\n{{- 'b' -}}\n c"), std::string("abc"));
        QCOMPARE(render("  {%+ if true %}x{% endif %}"), std::string("  x"));
        QCOMPARE(render("{% if true +%}\nx{% endif %}"), std::string("\nx"));
        QCOMPARE(render("a{# comment #}\nb"), std::string("ab"));
        // Jinja2 strips Python whitespace (str.isspace), not only ASCII.
        QCOMPARE(render("\u00a0 {% if true %}x{% endif %}"), std::string("x"));
        QCOMPARE(render("a \u3000{%- if true -%}\u2028 x{% endif %}"), std::string("ax"));
        QCOMPARE(render("line\r\nnext\n"), std::string("line\nnext"));  // newline normalisation, trailing one dropped
    }

    void expressions()
    {
        QCOMPARE(render("{{ 'a\\tb\\u00e9\\x41' }}"), std::string("a\tbéA"));
        QCOMPARE(render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 1 / 2 }} {{ 2 ** 10 }}"), std::string("7 3 2 0.5 1024"));
        QCOMPARE(render("{{ 'a' ~ 1 ~ none }} {{ 'x' + 'y' }} {{ [1, 'b'] }} {{ true }}"), std::string("a1None xy [1, 'b'] True"));
        QCOMPARE(render("{{ not x is defined }} {{ x is none }} {{ none is none }} {{ 1 is not none }}"),
                 std::string("True False True True"));
        QCOMPARE(render("{{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} {{ 1 == 1.0 }}"),
                 std::string("True True True True"));
        QCOMPARE(render("{{ '' or 'fallback' }} {{ 0 and 1 }} {{ 'y' if 1 > 2 else 'n' }}"), std::string("fallback 0 n"));
        QCOMPARE(render("{{ ' x '.strip() }}|{{ 'a,b'.split(',')[-1] }}|{{ 'abc'[1:] }}|{{ [1,2,3][::-1] }}"),
                 std::string("x|b|bc|[3, 2, 1]"));
        QCOMPARE(render("{{ m.get('k', 'd') }} {{ m['role'] }} {{ m.role }} {{ m.missing }}.", "[]", false,
                        R"({"m": {"role": "user"}})"),
                 std::string("d user user ."));
        QCOMPARE(render("{{ [1, 2] | length }} {{ 'héllo' | length }} {{ x | default('dft') }} {{ ['a','b'] | join('-') }}"),
                 std::string("2 5 dft a-b"));
        QCOMPARE(render("{{ {'a': [1, none, 'x\"']} | tojson }}"), std::string("{\"a\": [1, null, \"x\\\"\"]}"));
    }

    void loopsAndNamespaces()
    {
        QCOMPARE(render("{% for x in [10, 20, 30] %}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
                        "{% if not loop.last %},{% endif %}{% endfor %}"),
                 std::string("1TrueFalse,2FalseFalse,3FalseTrue"));
        QCOMPARE(render("{% set n = 1 %}{% for x in [1, 2] %}{% set n = n + x %}{% endfor %}{{ n }}"), std::string("1"));
        QCOMPARE(render("{% set ns = namespace(n=1) %}{% for x in [1, 2] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}"),
                 std::string("4"));
        QCOMPARE(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), std::string("a=1;b=2;"));
        QCOMPARE(render("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{% else %}none{% endfor %}"), std::string("24"));
        QCOMPARE(render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"), std::string("empty"));
        QCOMPARE(render("{% for x in range(5) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}"
                        "{% endif %}{{ x }}{% endfor %}"),
                 std::string("02"));
        QCOMPARE(render("{% macro greet(name, p='Hi') %}{{ p }} {{ name }}{% endmacro %}{{ greet('Ann') }}/{{ greet('Bo', p='Yo') }}"),
                 std::string("Hi Ann/Yo Bo"));
    }

    void errorsNameLineAndColumn()
    {
        expect_error("{% if true %}never closed", "line 1:1: unclosed block: expected {% endif %}");
        expect_error("a\n{% for x in y %}\n{% if x %}", "line 3:1: unclosed block: expected {% endif %}");
        expect_error("{{ 'x' }\n", "unclosed {{");
        expect_error("ok\n  {{ x | shout }}", "line 2:10: unsupported filter 'shout'");
        expect_error("{% include 'other' %}", "line 1:1: unsupported or unexpected tag 'include'");
        expect_error("{% endif %}", "unsupported or unexpected tag 'endif'");
        expect_error("{{ raise_exception('Only user and assistant roles') }}", "raise_exception: Only user and assistant roles");
        expect_error("{{ messages[0]['content'] + 1 }}", "unsupported operand types for +: str and int",
                     R"([{"role": "user", "content": "x"}])");
        expect_error("{{ missing.attr }}", "line 1:11: 'missing' is undefined");
        expect_error("{{ 'a' + missing }}", "'missing' is undefined");
        expect_error("{% set x.y = 1 %}", "only a namespace()");
        expect_error("{{ 1 +* 2 }}", "line 1:7: expected an expression, found '*'");
        expect_error("{# unterminated", "unclosed comment");
        expect_error("{{ \"unterminated }}", "unterminated string literal");
        expect_error("{% break %}", "'break' outside a for loop");
    }

    // Hostile templates end with an error quickly, never a hang or a stack overflow.
    void hostileTemplatesAreBounded()
    {
        expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion deeper than 64 calls");
        expect_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "nesting too deep");
        std::string deep_ifs;
        for (int i = 0; i < 1000; ++i) deep_ifs += "{% if true %}";
        expect_error(deep_ifs, "nesting too deep");
        expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                     "evaluation exceeded");
        expect_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                     "string exceeds");
        expect_error("{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}", "output exceeds");
        expect_error("{{ range(100000000) }}", "range() longer than");
        expect_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
        expect_error("{{ 3 ** 100 }}", "integer overflow");
        QCOMPARE(render("{{ (-1) ** 7 }} {{ 0 ** 0 }} {{ 2 ** 62 }} {{ [1, 2, 3][::9223372036854775807] }}"),
                 std::string("-1 1 4611686018427387904 [1]"));
    }
};

QTEST_GUILESS_MAIN(TestChatTemplate)
#include "test_chat_template.moc"
