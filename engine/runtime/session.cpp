// Session: one sequence over a shared Model, and the generation loop.
#include "moelens/session.h"

#include <algorithm>
#include <chrono>

#include "moelens/error.h"
#include "runtime/forward.h"
#include "runtime/prefill.h"

namespace moelens {

SessionState::SessionState(const ModelImpl& m, int max_tokens) : cache(m.config, max_tokens)
{
    const ModelConfig& c = m.config;
    const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
    const int dc = c.kv_lora_rank, E = c.n_routed_experts, k = c.num_experts_per_tok;
    n_heads = H;
    kv_stride = H * (dn + dv);
    x.resize(c.hidden_size);
    xn.resize(c.hidden_size);
    q.resize(static_cast<std::size_t>(H) * (dn + dr));
    q_a.resize(c.q_lora_rank);
    kv_a.resize(dc + dr);
    q_lat.resize(static_cast<std::size_t>(H) * dc);
    q_pe.resize(static_cast<std::size_t>(H) * dr);
    out_lat.resize(static_cast<std::size_t>(H) * dc);
    attn_o.resize(static_cast<std::size_t>(H) * dv);
    attn_out.resize(c.hidden_size);
    const int width = std::max({c.intermediate_size, c.moe_intermediate_size * (c.n_shared_experts + k), 1});
    ffn_scratch.resize(2 * static_cast<std::size_t>(width) + c.hidden_size);
    ffn_terms.resize(1 + static_cast<std::size_t>(k));
    ffn_out.resize(c.hidden_size);
    gate_probs.resize(E);
    route_scratch.resize(E + std::max(1, c.n_group));
    route_ids.resize(k);
    route_weights.resize(k);
    rope_cos.resize(dr / 2);
    rope_sin.resize(dr / 2);
    logits.resize(c.vocab_size);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        if (!c.is_moe_layer(l)) continue;
        RoutingRecord r;
        r.layer = l;
        r.experts.resize(k);
        r.weights.resize(k);
        r.groups.resize(k);
        event.routing.push_back(std::move(r));
    }
}

void SessionState::ensure_capacity(int n, bool naive)
{
    cache.reserve(n);
    const std::size_t cap = static_cast<std::size_t>(cache.capacity());
    if (scores.size() < cap * n_heads) scores.resize(cap * n_heads);
    if (naive && kv_naive.size() < cap * kv_stride) kv_naive.resize(cap * kv_stride);
    if (tokens.capacity() < cap) tokens.reserve(cap);
}

const char* stop_reason_name(StopReason r)
{
    switch (r) {
    case StopReason::max_new_tokens: return "max_new_tokens";
    case StopReason::eos: return "eos";
    case StopReason::stop_token: return "stop_token";
    case StopReason::stop_string: return "stop_string";
    case StopReason::cancelled: return "cancelled";
    case StopReason::callback: return "callback";
    case StopReason::context_full: return "context_full";
    }
    return "?";
}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) : m_model(std::move(model))
{
    if (!m_model) throw Error("Session: no model");
    const int limit = m_model->config().max_position_embeddings;
    const int max_tokens = options.max_tokens > 0 ? std::min(options.max_tokens, limit) : limit;
    m_state = std::make_unique<SessionState>(m_model->impl(), max_tokens);
    m_attention = options.attention;
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::step(int token, const EventSink& on_event, bool is_prompt)
{
    SessionState& s = *m_state;
    const ModelConfig& c = m_model->config();
    if (token < 0 || token >= c.vocab_size)
        throw Error("token id " + std::to_string(token) + " is outside the vocabulary (vocab_size " +
                    std::to_string(c.vocab_size) + ")");
    if (position() >= max_tokens())
        throw Error("context full: " + std::to_string(max_tokens()) + " tokens");
    forward_step(m_model->impl(), s, token, m_attention, on_event ? &s.event : nullptr);
    if (on_event) {
        s.event.is_prompt = is_prompt;
        on_event(s.event);
    }
    return logits();
}

std::span<const float> Session::prefill(std::span<const int> tokens, const EventSink& on_event,
                                        const std::atomic<bool>* cancel)
{
    if (m_attention == AttentionPath::naive) {
        for (int t : tokens) {
            if (cancel && cancel->load(std::memory_order_relaxed)) break;
            step(t, on_event, true);
        }
        return logits();
    }
    // Batched (runtime/prefill.h): each matrix is read once per batch of tokens.
    const ModelConfig& c = m_model->config();
    for (int t : tokens)
        if (t < 0 || t >= c.vocab_size)
            throw Error("token id " + std::to_string(t) + " is outside the vocabulary (vocab_size " +
                        std::to_string(c.vocab_size) + ")");
    for (std::size_t done = 0; done < tokens.size();) {
        if (cancel && cancel->load(std::memory_order_relaxed)) break;
        if (position() >= max_tokens()) throw Error("context full: " + std::to_string(max_tokens()) + " tokens");
        const std::size_t room = static_cast<std::size_t>(max_tokens() - position());
        const std::size_t n = std::min({tokens.size() - done, static_cast<std::size_t>(kPrefillBatch), room});
        // As the per-token path: every token's event is delivered, whatever it returns.
        const EventSink all = on_event ? EventSink([&](const TokenEvent& e) {
            on_event(e);
            return true;
        })
                                       : EventSink{};
        forward_prefill(m_model->impl(), *m_state, tokens.subspan(done, n), all);
        done += n;
    }
    return logits();
}

std::span<const float> Session::logits() const
{
    if (!m_state->has_logits) return {};
    return m_state->logits;
}

GenerationResult Session::generate(std::span<const int> prompt, const SamplingParams& params, const EventSink& on_event,
                                   const std::atomic<bool>* cancel, const GenerateHooks& hooks)
{
    using clock = std::chrono::steady_clock;
    GenerationResult r;
    r.prompt_tokens = static_cast<int>(prompt.size());
    auto cancelled = [&] { return cancel && cancel->load(std::memory_order_relaxed); };
    bool keep_going = true;
    EventSink sink;
    if (on_event)
        sink = [&](const TokenEvent& e) {
            keep_going = on_event(e);
            return keep_going;
        };

    const auto t0 = clock::now();
    if (prompt.size() > static_cast<std::size_t>(max_tokens() - position())) {
        r.reason = StopReason::context_full;
        return r;
    }
    if (m_attention == AttentionPath::absorbed) {
        // Batched (runtime/prefill.h), with the per-token contract kept: events
        // are delivered in order, the cancel flag is checked before each token's
        // event, and when the callback stops or the flag is set the sequence ends
        // at that token (the batch's later positions are dropped, and the logits
        // are not those of a fed token, so they are cleared).
        for (std::size_t done = 0; done < prompt.size();) {
            if (cancelled()) {
                r.reason = StopReason::cancelled;
                return r;
            }
            const std::size_t n = std::min(prompt.size() - done, static_cast<std::size_t>(kPrefillBatch));
            const int pos0 = position();
            bool was_cancelled = false;
            const EventSink per_token = [&](const TokenEvent& e) {
                if (cancelled()) {
                    was_cancelled = true;
                    return false;
                }
                return sink ? sink(e) : true;
            };
            const int delivered = forward_prefill(m_model->impl(), *m_state, prompt.subspan(done, n), per_token);
            if (was_cancelled || !keep_going) {
                m_state->tokens.resize(static_cast<std::size_t>(pos0 + delivered - (was_cancelled ? 1 : 0)));
                m_state->has_logits = false;
                r.reason = was_cancelled ? StopReason::cancelled : StopReason::callback;
                return r;
            }
            done += n;
        }
    } else {
        for (int t : prompt) {
            if (cancelled()) {
                r.reason = StopReason::cancelled;
                return r;
            }
            step(t, sink, true);
            if (!keep_going) {
                r.reason = StopReason::callback;
                return r;
            }
        }
    }
    const auto t1 = clock::now();
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    if (!m_state->has_logits) throw Error("generate: empty prompt and nothing fed before: no logits to sample from");

    Sampler sampler(params);
    const ModelConfig& c = m_model->config();
    std::string text_tail;  // recent decoded text, for stop strings
    std::size_t longest_stop = 0;
    for (const auto& s : params.stop_strings) longest_stop = std::max(longest_stop, s.size());
    r.reason = StopReason::max_new_tokens;
    for (int i = 0; i < params.max_new_tokens; ++i) {
        if (cancelled()) {
            r.reason = StopReason::cancelled;
            break;
        }
        const int next = sampler.sample(logits(), m_state->tokens);
        r.tokens.push_back(next);
        if (hooks.on_token) hooks.on_token(next);
        if (params.stop_at_eos && std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), next) != c.eos_token_ids.end()) {
            r.reason = StopReason::eos;
            break;
        }
        if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), next) != params.stop_token_ids.end()) {
            r.reason = StopReason::stop_token;
            break;
        }
        if (longest_stop > 0 && hooks.token_text) {
            text_tail += hooks.token_text(next);
            bool hit = false;
            for (const auto& s : params.stop_strings) hit |= !s.empty() && text_tail.find(s) != std::string::npos;
            if (hit) {
                r.reason = StopReason::stop_string;
                break;
            }
            // Keep only what a stop string could still span.
            if (text_tail.size() > 2 * longest_stop + 64) text_tail.erase(0, text_tail.size() - longest_stop);
        }
        if (position() >= max_tokens()) {
            r.reason = StopReason::context_full;
            break;
        }
        step(next, sink, false);
        if (!keep_going) {
            r.reason = StopReason::callback;
            break;
        }
    }
    r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return r;
}

void Session::reset()
{
    m_state->tokens.clear();
    m_state->has_logits = false;
    m_state->stage_times = {};
}

const std::vector<int>& Session::tokens() const { return m_state->tokens; }
int Session::position() const { return static_cast<int>(m_state->tokens.size()); }
int Session::max_tokens() const { return m_state->cache.max_tokens(); }
CacheStats Session::cache_stats() const { return m_state->cache.stats(position()); }
const StageTimes& Session::stage_times() const { return m_state->stage_times; }
AttentionPath Session::attention() const { return m_attention; }
void Session::set_attention(AttentionPath path) { m_attention = path; }
const Model& Session::model() const { return *m_model; }

void forward_batch(std::span<Session* const> sessions, std::span<const int> tokens,
                   const std::function<bool(std::size_t, const TokenEvent&)>& on_event)
{
    if (sessions.size() != tokens.size())
        throw Error("forward_batch: " + std::to_string(sessions.size()) + " sessions but " +
                    std::to_string(tokens.size()) + " tokens");
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        EventSink sink;
        if (on_event) sink = [&](const TokenEvent& e) { return on_event(i, e); };
        sessions[i]->step(tokens[i], sink, false);
    }
}

}  // namespace moelens
