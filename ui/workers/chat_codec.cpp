#include "workers/chat_codec.h"

#include <algorithm>
#include <span>
#include <tuple>

#include "moelens/chat_template.h"
#include "moelens/tokenizer.h"

struct ChatCodec::State {
    moelens::Tokenizer tokenizer;
    moelens::StreamingDetokenizer stream;
    moelens::ChatTemplate chatTemplate;
    std::vector<moelens::StreamingDetokenizer> answers;  // beginAnswers()

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

// The turns before `systemTurns`, then those from `from` up to (not including) `end`.
std::vector<int> encodeTurns(const moelens::Tokenizer& tokenizer, const moelens::ChatTemplate& chatTemplate,
                             const ChatTurns& turns, std::size_t systemTurns, std::size_t from, std::size_t end,
                             bool generationPrompt)
{
    std::vector<moelens::ChatMessage> messages;
    for (std::size_t i = 0; i < end; ++i) {
        if (i >= systemTurns && i < from) continue;
        moelens::ChatMessage m;
        m.role = turns[i].role.toStdString();
        m.content = turns[i].content.toStdString();
        messages.push_back(std::move(m));
    }
    const std::string text = chatTemplate.render(messages, generationPrompt);
    // The template writes BOS itself; the special tokens in the text are matched
    // as added tokens, so no further special tokens are added here.
    const std::vector<std::uint32_t> ids = tokenizer.encode(text, /*add_special_tokens=*/false);
    return std::vector<int>(ids.begin(), ids.end());
}

// The first of `starts` (turn indices, each one a user turn after the first) from
// which the chat fits maxTokens, with its tokens; the last start when none fits.
// Leaving out more turns never lengthens the prompt, so it is found by bisection:
// a few encodes however long the chat is.
template <typename Encode>
std::pair<std::size_t, std::vector<int>> firstStartThatFits(const Encode& encode, const std::vector<std::size_t>& starts,
                                                             int maxTokens)
{
    std::size_t lo = 0, hi = starts.size() - 1;
    std::vector<int> best = encode(starts[hi]);
    if (int(best.size()) > maxTokens) return {starts[hi], std::move(best)};
    while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        std::vector<int> t = encode(starts[mid]);
        if (int(t.size()) <= maxTokens) {
            hi = mid;
            best = std::move(t);
        } else {
            lo = mid + 1;
        }
    }
    return {starts[hi], std::move(best)};
}

}  // namespace

ChatCodec::Encoded ChatCodec::encodeChat(const ChatTurns& turns, int maxTokens) const
{
    std::size_t systemTurns = 0;
    while (systemTurns < turns.size() && turns[systemTurns].role == QLatin1String("system")) ++systemTurns;
    const auto encode = [&](std::size_t from) {
        return encodeTurns(m_state->tokenizer, m_state->chatTemplate, turns, systemTurns, from, turns.size(), true);
    };
    // Where the kept turns may start: right after the system turns, or at any later user turn.
    std::vector<std::size_t> starts{systemTurns};
    for (std::size_t i = systemTurns + 1; i < turns.size(); ++i)
        if (turns[i].role == QLatin1String("user")) starts.push_back(i);

    Encoded out;
    out.tokens = encode(systemTurns);
    std::size_t from = systemTurns;
    if (int(out.tokens.size()) > maxTokens && starts.size() > 1) {
        std::tie(from, out.tokens) = firstStartThatFits(encode, starts, maxTokens);
        out.turnsLeftOut = int(from - systemTurns);
    }
    // The last turn starts where the kept turns before it, rendered on their own,
    // stop agreeing with the whole prompt (the template closes each turn with a
    // special token, so in practice that is exactly their length).
    if (!turns.empty()) {
        const std::vector<int> before = encodeTurns(m_state->tokenizer, m_state->chatTemplate, turns, systemTurns, from,
                                                    turns.size() - 1, false);
        const auto diverge = std::mismatch(before.begin(), before.end(), out.tokens.begin(), out.tokens.end());
        out.latestMessageStart = int(diverge.second - out.tokens.begin());
    }
    return out;
}

QString ChatCodec::tokenText(int token) const
{
    const std::uint32_t id = std::uint32_t(token);
    return QString::fromStdString(m_state->tokenizer.decode(std::span<const std::uint32_t>(&id, 1)));
}

void ChatCodec::beginAnswer() { m_state->stream.reset(); }

QString ChatCodec::decodeNext(int token)
{
    return QString::fromStdString(m_state->stream.push(std::uint32_t(token)));
}

QString ChatCodec::flush() { return QString::fromStdString(m_state->stream.finish()); }

void ChatCodec::beginAnswers(int count)
{
    m_state->answers.assign(std::size_t(std::max(0, count)),
                            moelens::StreamingDetokenizer(m_state->tokenizer, /*skip_special_tokens=*/true));
}

QString ChatCodec::decodeNext(int answer, int token)
{
    return QString::fromStdString(m_state->answers.at(std::size_t(answer)).push(std::uint32_t(token)));
}

QString ChatCodec::flush(int answer) { return QString::fromStdString(m_state->answers.at(std::size_t(answer)).finish()); }
