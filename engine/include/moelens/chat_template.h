#pragma once
// Chat templates: the Jinja `chat_template` of tokenizer_config.json, rendered the
// way Python transformers' apply_chat_template does (Jinja2 with trim_blocks and
// lstrip_blocks). Only the Jinja subset listed in docs/chat-template.md is
// supported; anything else is a TokenizerError naming line and column. Qt-free.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "moelens/error.h"

namespace moelens {

class Tokenizer;

struct ChatToolCall {
    std::string type = "function";
    std::string name;
    std::string arguments;  // JSON text, as the model wrote it
};

struct ChatMessage {
    std::string role;                    // "system", "user", "assistant", "tool"
    std::optional<std::string> content;  // none for an assistant message that only calls tools
    std::vector<ChatToolCall> tool_calls;
};

class ChatTemplate {
public:
    // Parses the template now, so syntax errors surface at load time.
    ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token);
    // The tokenizer's chat_template with its bos/eos tokens; throws if it has none.
    static ChatTemplate from_tokenizer(const Tokenizer& tokenizer);

    std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
    // `messages_json`: a JSON array of message objects with any keys (as given to
    // transformers); `extra_json`: an optional JSON object of further variables.
    std::string render_json(std::string_view messages_json, bool add_generation_prompt,
                            std::string_view extra_json = {}) const;

    struct Impl;

private:
    std::shared_ptr<const Impl> m_impl;
};

}  // namespace moelens
