#pragma once
// Text <-> tokens for the engine worker: the model folder's tokenizer and chat
// template turned into the three things a chat needs (a prompt from the turns,
// the text of each generated token as it streams, the text of a whole answer).
// Lives on the engine thread only.
#include <QString>

#include <memory>
#include <string>
#include <vector>

#include "workers/engine_types.h"

class ChatCodec {
public:
    // Loads tokenizer.json / tokenizer_config.json from the model folder. Throws
    // moelens::TokenizerError naming the file and the problem.
    explicit ChatCodec(const QString& modelDir);
    ~ChatCodec();

    struct Encoded {
        std::vector<int> tokens;
        int turnsLeftOut = 0;        // earliest turns not in `tokens`
        int latestMessageStart = 0;  // where the last turn (with its template markers) begins
    };
    // The chat template rendered with a generation prompt, then encoded. When that
    // is longer than maxTokens, the earliest exchanges after the system turns are
    // left out, from one user turn to the next, until it fits; the last user turn
    // always stays, so the result can still be longer when that turn alone is.
    Encoded encodeChat(const ChatTurns& turns, int maxTokens) const;
    // One token's text on its own, special tokens included (prompt tokens' labels).
    QString tokenText(int token) const;
    // Starts a new answer: the streaming decoder forgets what it held.
    void beginAnswer();
    // The text this token completes (may be empty while a UTF-8 sequence is split
    // over tokens, and is empty for special tokens).
    QString decodeNext(int token);
    // Whatever the streaming decoder still holds at the end of an answer.
    QString flush();
    // Several answers written at once (a comparison's columns), each with a
    // streaming decoder of its own: `count` fresh ones, addressed by index.
    void beginAnswers(int count);
    QString decodeNext(int answer, int token);
    QString flush(int answer);

private:
    struct State;
    std::unique_ptr<State> m_state;
};
