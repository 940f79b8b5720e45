#include "workers/chat_codec.h"

#include <optional>

#include "moelens/chat_template.h"
#include "moelens/tokenizer.h"

struct ChatCodec::State {
    moelens::Tokenizer tokenizer;
    moelens::StreamingDetokenizer stream;
    moelens::ChatTemplate chatTemplate;

    explicit State(moelens::Tokenizer t)
        : tokenizer(std::move(t)),
          stream(tokenizer, /*skip_special_tokens=*/true),
          chatTemplate(moelens::ChatTemplate::from_tokenizer(tokenizer))
    {
    }
};

ChatCodec::ChatCodec(const QString& modelDir)
    : m_state(std::make_unique<State>(moelens::Tokenizer::load(modelDir.toStdString())))
{
}

ChatCodec::~ChatCodec() = default;

std::vector<int> ChatCodec::encodeChat(const ChatTurns& turns) const
{
    std::vector<moelens::ChatMessage> messages;
    for (const ChatTurn& turn : turns) {
        moelens::ChatMessage m;
        m.role = turn.role.toStdString();
        m.content = turn.content.toStdString();
        messages.push_back(std::move(m));
    }
    const std::string text = m_state->chatTemplate.render(messages, /*add_generation_prompt=*/true);
    // The template writes BOS itself; the special tokens in the text are matched
    // as added tokens, so no further special tokens are added here.
    const std::vector<std::uint32_t> ids = m_state->tokenizer.encode(text, /*add_special_tokens=*/false);
    return std::vector<int>(ids.begin(), ids.end());
}

void ChatCodec::beginAnswer() { m_state->stream.reset(); }

QString ChatCodec::decodeNext(int token)
{
    return QString::fromStdString(m_state->stream.push(std::uint32_t(token)));
}

QString ChatCodec::flush() { return QString::fromStdString(m_state->stream.finish()); }
