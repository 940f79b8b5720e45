#include "backend/device_step.h"

#include "backend/device_model.h"
#include "model/model_impl.h"
#include "runtime/stage_clock.h"

namespace moelens {
namespace {

int moe_layer_count(const ModelConfig& c)
{
    int n = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) n += c.is_moe_layer(l);
    return n;
}

// Runs tokens on the device and appends them to the session; the routing of
// token t, MoE layer i, choice j lands at seq.route_ids[(i * n + t) * k + j].
DeviceSequence& run(const ModelImpl& m, SessionState& s, std::span<const int> tokens)
{
    if (!s.device) s.device = std::make_unique<DeviceSequence>(*m.device, s.cache.max_tokens());
    DeviceSequence& seq = *s.device;
    const std::size_t routes = static_cast<std::size_t>(moe_layer_count(m.config)) * tokens.size() *
                               std::max(1, m.config.num_experts_per_tok);
    if (seq.route_ids.size() < routes) {
        seq.route_ids.resize(routes);
        seq.route_weights.resize(routes);
    }
    const StageClock clock(s.stage_times.total);
    s.stage_times.tokens += static_cast<int>(tokens.size());
    seq.forward(tokens, static_cast<int>(s.tokens.size()), s.logits.data(), seq.route_ids.data(), seq.route_weights.data());
    s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
    s.has_logits = true;
    return seq;
}

void fill_event(const ModelImpl& m, const SessionState& s, const DeviceSequence& seq, int n, int t, int token,
                int position, TokenEvent& e)
{
    const int k = m.config.num_experts_per_tok;
    const int per_group = std::max(1, m.route.n_experts / std::max(1, m.route.n_group));
    e.token = token;
    e.position = position;
    for (std::size_t i = 0; i < e.routing.size(); ++i) {
        RoutingRecord& r = e.routing[i];
        for (int j = 0; j < k; ++j) {
            const std::size_t at = (i * n + t) * k + j;
            r.experts[j] = seq.route_ids[at];
            r.weights[j] = seq.route_weights[at];
            r.groups[j] = seq.route_ids[at] / per_group;
        }
    }
    e.cache = s.cache.stats(position + 1);
}

}  // namespace

void device_forward_step(const ModelImpl& m, SessionState& s, int token, TokenEvent* event)
{
    const int pos = static_cast<int>(s.tokens.size());
    const DeviceSequence& seq = run(m, s, std::span<const int>(&token, 1));
    if (event) fill_event(m, s, seq, 1, 0, token, pos, *event);
}

int device_forward_prefill(const ModelImpl& m, SessionState& s, std::span<const int> tokens, const EventSink& on_event)
{
    const int n = static_cast<int>(tokens.size());
    if (n == 0) return 0;
    const int pos0 = static_cast<int>(s.tokens.size());
    const DeviceSequence& seq = run(m, s, tokens);
    if (!on_event) return n;
    for (int t = 0; t < n; ++t) {
        s.event.is_prompt = true;
        fill_event(m, s, seq, n, t, tokens[t], pos0 + t, s.event);
        if (!on_event(s.event)) return t + 1;
    }
    return n;
}

}  // namespace moelens
