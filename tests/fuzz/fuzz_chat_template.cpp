// A chat template (tokenizer_config.json's Jinja) and the messages it renders:
// input = template source, then "\n----\n", then a JSON array of messages.
// Parsing and rendering must refuse what they do not support with an error, and
// stay bounded (loops and recursion) whatever the template says.
#include "fuzz_support.h"
#include "moelens/chat_template.h"
#include "moelens/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto [source, messages] = moelens::fuzz::split2(moelens::fuzz::as_text(data, size));
    try {
        const moelens::ChatTemplate tpl(std::string(source), "<bos>", "<eos>");
        const std::string_view json = messages.empty() ? std::string_view(R"([{"role":"user","content":"hi"}])") : messages;
        (void)tpl.render_json(json, true);
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
