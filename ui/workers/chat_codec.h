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

    // The chat template rendered with a generation prompt, then encoded.
    std::vector<int> encodeChat(const ChatTurns& turns) const;
    // Starts a new answer: the streaming decoder forgets what it held.
    void beginAnswer();
    // The text this token completes (may be empty while a UTF-8 sequence is split
    // over tokens, and is empty for special tokens).
    QString decodeNext(int token);
    // Whatever the streaming decoder still holds at the end of an answer.
    QString flush();

private:
    struct State;
    std::unique_ptr<State> m_state;
};
