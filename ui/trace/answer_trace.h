#pragma once
// What the UI keeps of one answer's generation: one row per generated token with
// the routing of every MoE layer and the cache use after it. Built live from the
// engine's events, or rebuilt from a stored routing trace for replay (then the
// cache figures are recomputed from the model's per-token sizes, when known).
// Owned by the UI thread; passed by value.
#include <QMetaType>
#include <QString>

#include <cstdint>
#include <optional>
#include <vector>

#include "moelens/events.h"
#include "moelens/model.h"
#include "moelens_storage/records.h"
#include "trace/device_traffic.h"

// One token as the engine reported it, with its decoded text piece.
struct TokenRow {
    int token = 0;
    int position = 0;
    bool isPrompt = false;
    bool inLatestMessage = false;                // a prompt token of the turn being answered
    QString text;                                // decoded piece ("" for special tokens in answers)
    std::vector<moelens::RoutingRecord> routing; // one per MoE layer, ascending layer
    moelens::CacheStats cache;
    // With virtual devices: the answer's placement and traffic so far (generated
    // tokens only; the trace keeps the latest, not one per row).
    std::optional<DeviceTraffic> devices;
};
Q_DECLARE_METATYPE(TokenRow)

using TokenRows = std::vector<TokenRow>;
Q_DECLARE_METATYPE(TokenRows)

// The model facts the views need to draw a trace: expert counts, groups, cache
// sizes per token. Taken from ModelInfo, or from config.json for a replay.
struct TraceShape {
    int nRoutedExperts = 0;
    int nSharedExperts = 0;
    int topK = 0;
    int nGroup = 1;
    int topkGroup = 1;
    std::vector<int> moeLayers;
    std::uint64_t latentBytesPerToken = 0;
    std::uint64_t mhaBytesPerToken = 0;
    std::uint64_t gqa8BytesPerToken = 0;

    static TraceShape fromInfo(const moelens::ModelInfo& info);
    bool knowsCacheSizes() const { return latentBytesPerToken > 0; }
};

class AnswerTrace {
public:
    AnswerTrace() = default;
    explicit AnswerTrace(TraceShape shape) : m_shape(std::move(shape)) {}

    const TraceShape& shape() const { return m_shape; }
    // Generated tokens: what every routing view draws.
    const TokenRows& tokens() const { return m_tokens; }
    // The prompt tokens of the message answered (the last turn, with the chat
    // template's markers), which the routing map draws before the answer. Earlier
    // turns are left out: each answer's prompt repeats the whole chat.
    const TokenRows& messageTokens() const { return m_message; }
    // Cache use after every token fed (prompt and generated), for the cache chart.
    const std::vector<moelens::CacheStats>& cacheSeries() const { return m_cache; }
    int promptTokens() const { return m_promptTokens; }
    bool isEmpty() const { return m_tokens.empty() && m_message.empty() && m_cache.empty(); }
    // Where the experts were and what the exchange moved for this answer; none
    // when it ran on one device (or was stored before runs kept it).
    const std::optional<DeviceTraffic>& devices() const { return m_devices; }
    void setDevices(std::optional<DeviceTraffic> devices) { m_devices = std::move(devices); }

    void append(const TokenRow& row);

    // Index of `layer` among the MoE layers, or -1.
    int moeIndex(int layer) const;
    // Top-1 expert of generated token `t` at MoE layer `layer`, or -1.
    int topExpert(std::size_t t, int layer) const;

    // For the store: the message's tokens (as the prompt rows) then the generated
    // tokens, experts and weights as [token][layer][top_k], the group of each chosen
    // expert as groups (groups_per_row = top_k).
    moelens::storage::RoutingTrace toStorage() const;
    // From the store. `shape` supplies the cache sizes and group counts when the
    // model is known (otherwise they stay 0 and the views say so); with them the
    // cache series is recomputed for `promptTokens` + the stored tokens, since the
    // used bytes are tokens held x bytes per token (reserved memory is not known).
    static AnswerTrace fromStorage(const moelens::storage::RoutingTrace& trace, TraceShape shape, int promptTokens);

private:
    TraceShape m_shape;
    TokenRows m_tokens;
    TokenRows m_message;
    std::vector<moelens::CacheStats> m_cache;
    int m_promptTokens = 0;
    std::optional<DeviceTraffic> m_devices;
};
Q_DECLARE_METATYPE(AnswerTrace)
