#include "trace/answer_trace.h"

#include <algorithm>

TraceShape TraceShape::fromInfo(const moelens::ModelInfo& info)
{
    TraceShape s;
    s.nRoutedExperts = info.n_routed_experts;
    s.nSharedExperts = info.n_shared_experts;
    s.topK = info.top_k;
    s.nGroup = std::max(1, info.n_group);
    s.topkGroup = std::max(1, info.topk_group);
    s.moeLayers = info.moe_layers;
    s.latentBytesPerToken = info.latent_cache_bytes_per_token;
    s.mhaBytesPerToken = info.mha_cache_bytes_per_token;
    s.gqa8BytesPerToken = info.gqa8_cache_bytes_per_token;
    return s;
}

void AnswerTrace::append(const TokenRow& row)
{
    m_cache.push_back(row.cache);
    if (row.devices) m_devices = row.devices;
    if (row.isPrompt) {
        ++m_promptTokens;
        if (row.inLatestMessage) m_message.push_back(row);
        return;
    }
    m_tokens.push_back(row);
    m_tokens.back().devices.reset();
}

int AnswerTrace::moeIndex(int layer) const
{
    const auto& layers = m_shape.moeLayers;
    const auto it = std::find(layers.begin(), layers.end(), layer);
    return it == layers.end() ? -1 : int(it - layers.begin());
}

int AnswerTrace::topExpert(std::size_t t, int layer) const
{
    if (t >= m_tokens.size()) return -1;
    for (const moelens::RoutingRecord& r : m_tokens[t].routing)
        if (r.layer == layer && !r.experts.empty()) return r.experts.front();
    return -1;
}

moelens::storage::RoutingTrace AnswerTrace::toStorage() const
{
    moelens::storage::RoutingTrace out;
    out.n_experts = std::uint16_t(m_shape.nRoutedExperts);
    out.top_k = std::uint8_t(m_shape.topK);
    out.groups_per_row = std::uint8_t(m_shape.topK);
    // Of the prompt only the answered message is kept: the rest repeats earlier turns.
    out.n_prompt_tokens = std::uint32_t(m_message.size());
    for (int layer : m_shape.moeLayers) out.layers.push_back(std::uint16_t(layer));
    const std::size_t k = std::size_t(m_shape.topK);
    const auto appendRow = [&](const TokenRow& row) {
        std::vector<std::uint16_t> experts(out.layers.size() * k, 0);
        std::vector<float> weights(out.layers.size() * k, 0.0f);
        std::vector<std::uint8_t> groups(out.layers.size() * k, 0);
        for (const moelens::RoutingRecord& r : row.routing) {
            const int li = moeIndex(r.layer);
            if (li < 0) continue;
            for (std::size_t j = 0; j < k && j < r.experts.size(); ++j) {
                experts[std::size_t(li) * k + j] = std::uint16_t(r.experts[j]);
                weights[std::size_t(li) * k + j] = j < r.weights.size() ? r.weights[j] : 0.0f;
                groups[std::size_t(li) * k + j] = j < r.groups.size() ? std::uint8_t(r.groups[j]) : 0;
            }
        }
        out.append_token(row.token, row.text.toStdString(), experts, weights, groups);
    };
    for (const TokenRow& row : m_message) appendRow(row);
    for (const TokenRow& row : m_tokens) appendRow(row);
    return out;
}

AnswerTrace AnswerTrace::fromStorage(const moelens::storage::RoutingTrace& trace, TraceShape shape, int promptTokens)
{
    shape.nRoutedExperts = trace.n_experts;
    shape.topK = trace.top_k;
    shape.moeLayers.assign(trace.layers.begin(), trace.layers.end());
    AnswerTrace out(shape);
    const std::size_t k = trace.top_k;
    const std::size_t stride = trace.row_stride();
    const std::size_t gStride = trace.layers.size() * trace.groups_per_row;
    // The prompt rows hold the answered message (older traces stored none).
    for (std::size_t t = 0; t < trace.n_tokens(); ++t) {
        const bool inMessage = t < trace.n_prompt_tokens;
        TokenRow row;
        row.token = trace.token_ids[t];
        row.position = int(t);
        row.isPrompt = inMessage;
        row.inLatestMessage = inMessage;
        if (t < trace.token_texts.size()) row.text = QString::fromStdString(trace.token_texts[t]);
        for (std::size_t li = 0; li < trace.layers.size(); ++li) {
            moelens::RoutingRecord r;
            r.layer = trace.layers[li];
            for (std::size_t j = 0; j < k; ++j) {
                r.experts.push_back(trace.expert_ids[t * stride + li * k + j]);
                r.weights.push_back(trace.gate_weights[t * stride + li * k + j]);
                if (trace.groups_per_row == k) r.groups.push_back(trace.group_ids[t * gStride + li * k + j]);
            }
            row.routing.push_back(std::move(r));
        }
        (inMessage ? out.m_message : out.m_tokens).push_back(std::move(row));
    }
    if (shape.knowsCacheSizes()) {
        out.m_promptTokens = promptTokens;
        const int held = promptTokens + int(out.m_tokens.size());
        for (int n = 1; n <= held; ++n) {
            moelens::CacheStats c;
            c.tokens_held = n;
            c.latent_bytes_used = std::uint64_t(n) * shape.latentBytesPerToken;
            c.mha_equivalent_bytes = std::uint64_t(n) * shape.mhaBytesPerToken;
            c.gqa8_equivalent_bytes = std::uint64_t(n) * shape.gqa8BytesPerToken;
            out.m_cache.push_back(c);
        }
    }
    return out;
}
