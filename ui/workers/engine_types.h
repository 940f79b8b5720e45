#pragma once
// Value types that cross between the UI thread and the EngineWorker thread.
#include <QMetaType>
#include <QString>

#include <cstdint>
#include <vector>

#include "moelens/model.h"
#include "moelens/sampling.h"
#include "moelens/session.h"
#include "trace/device_traffic.h"

struct ChatTurn {
    QString role;  // "system", "user" or "assistant"
    QString content;
};
using ChatTurns = std::vector<ChatTurn>;

struct GenerateRequest {
    quint64 id = 0;  // chosen by the UI, echoed in every answer
    ChatTurns turns; // the conversation so far, ending with the user's message
    moelens::SamplingParams sampling;
};

struct GenerationSummary {
    quint64 id = 0;
    QString text;            // the whole decoded answer
    int promptTokens = 0;
    int reusedTokens = 0;    // of those, already in the session's cache from the previous turn (not read again)
    int generatedTokens = 0;
    double prefillSeconds = 0;
    double decodeSeconds = 0;
    QString stopReason;      // stop_reason_name(), or "error"
    QString error;           // empty unless the run failed
    bool stopped = false;    // Stop was pressed
    int turnsLeftOut = 0;    // earliest turns left out so the prompt fits the context
    int contextTokens = 0;   // the context the prompt had to fit
    std::optional<DeviceTraffic> devices;  // with virtual devices: where the experts were, what moved
};

// Absorbed vs naive MLA on the same tokens (teacher-forced: both paths are fed
// the prompt and the stored answer, so their logits are compared position by position).
struct AttentionCheckResult {
    int tokensCompared = 0;
    double maxLogitDiff = 0;       // largest |absorbed - naive| over every logit of every position
    int argmaxChanges = 0;         // positions whose most likely next token differs
    int expertChanges = 0;         // (token, MoE layer) pairs whose chosen expert set differs
    int routedDecisions = 0;       // (token, MoE layer) pairs compared
    std::uint64_t absorbedCacheBytes = 0;  // latent cache after the last token (both paths keep it)
    std::uint64_t naiveRebuiltBytes = 0;   // per-head keys and values the naive path decompresses from it
    double absorbedSeconds = 0;
    double naiveSeconds = 0;
    QString error;
};

Q_DECLARE_METATYPE(ChatTurn)
Q_DECLARE_METATYPE(GenerateRequest)
Q_DECLARE_METATYPE(GenerationSummary)
Q_DECLARE_METATYPE(AttentionCheckResult)
Q_DECLARE_METATYPE(moelens::ModelInfo)
