// moelens-cli chat-template: {"messages": [...], "add_generation_prompt": bool} on
// stdin -> the rendered prompt on stdout, byte for byte (no newline added). Other
// keys of the object become template variables (e.g. "tools").
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "moelens/chat_template.h"
#include "moelens/tokenizer.h"

namespace moelens::cli {
namespace {

int run_chat_template(const std::vector<std::string>& argv)
{
    const Args args(argv, {"model"}, {});
    const Tokenizer tok = Tokenizer::load(args.require("model"));
    const ChatTemplate tmpl = ChatTemplate::from_tokenizer(tok);

    const std::string input{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    nlohmann::ordered_json in;
    try {
        in = nlohmann::ordered_json::parse(input);
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("stdin: not JSON: ") + e.what());
    }
    if (!in.is_object() || !in.contains("messages"))
        throw Error("stdin: expected {\"messages\": [...], \"add_generation_prompt\": bool}");
    const bool add_generation_prompt = in.value("add_generation_prompt", false);
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    for (const auto& [key, value] : in.items())
        if (key != "messages" && key != "add_generation_prompt") extra[key] = value;
    const std::string out = tmpl.render_json(in["messages"].dump(), add_generation_prompt, extra.dump());
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

const Command kChatTemplateCommand = {
    "chat-template", "--model DIR",
    "{\"messages\", \"add_generation_prompt\"} on stdin -> the prompt the model's chat template renders",
    run_chat_template};

}  // namespace moelens::cli
