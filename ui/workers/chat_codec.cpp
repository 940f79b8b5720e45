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

namespace {

std::vector<int> encodeTurns(const moelens::Tokenizer& tokenizer, const moelens::ChatTemplate& chatTemplate,
                             const ChatTurns& turns, std::size_t systemTurns, std::size_t from)
{
    std::vector<moelens::ChatMessage> messages;
    for (std::size_t i = 0; i < turns.size(); ++i) {
        if (i >= systemTurns && i < from) continue;
        moelens::ChatMessage m;
        m.role = turns[i].role.toStdString();
        m.content = turns[i].content.toStdString();
        messages.push_back(std::move(m));
    }
    const std::string text = chatTemplate.render(messages, /*add_generation_prompt=*/true);
    // The template writes BOS itself; the special tokens in the text are matched
    // as added tokens, so no further special tokens are added here.
    const std::vector<std::uint32_t> ids = tokenizer.encode(text, /*add_special_tokens=*/false);
    return std::vector<int>(ids.begin(), ids.end());
}

}  // namespace

ChatCodec::Encoded ChatCodec::encodeChat(const ChatTurns& turns, int maxTokens) const
{
    const auto encode = [&](std::size_t systemTurns, std::size_t from) {
        return encodeTurns(m_state->tokenizer, m_state->chatTemplate, turns, systemTurns, from);
    };
    std::size_t systemTurns = 0;
    while (systemTurns < turns.size() && turns[systemTurns].role == QLatin1String("system")) ++systemTurns;
    // Where the kept turns may start: right after the system turns, or at any later user turn.
    std::vector<std::size_t> starts{systemTurns};
    for (std::size_t i = systemTurns + 1; i < turns.size(); ++i)
        if (turns[i].role == QLatin1String("user")) starts.push_back(i);

    Encoded out;
    out.tokens = encode(systemTurns, starts.front());
    if (int(out.tokens.size()) <= maxTokens || starts.size() == 1) return out;
    // Leaving out more turns never lengthens the prompt, so the first start that
    // fits is found by bisection: a few encodes however long the chat is.
    std::size_t lo = 1, hi = starts.size() - 1;  // starts[hi] is the last user turn
    std::vector<int> best = encode(systemTurns, starts[hi]);
    if (int(best.size()) <= maxTokens) {
        while (lo < hi) {
            const std::size_t mid = (lo + hi) / 2;
            std::vector<int> t = encode(systemTurns, starts[mid]);
            if (int(t.size()) <= maxTokens) {
                hi = mid;
                best = std::move(t);
            } else {
                lo = mid + 1;
            }
        }
    }
    out.tokens = std::move(best);
    out.turnsLeftOut = int(starts[hi] - systemTurns);
    return out;
}

void ChatCodec::beginAnswer() { m_state->stream.reset(); }

QString ChatCodec::decodeNext(int token)
{
    return QString::fromStdString(m_state->stream.push(std::uint32_t(token)));
}

QString ChatCodec::flush() { return QString::fromStdString(m_state->stream.finish()); }
