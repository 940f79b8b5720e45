// Session: one sequence over a shared Model, as the one-sequence case of a
// Scheduler (runtime/scheduler.cpp holds the generation loop).
#include "moelens/session.h"

#include <algorithm>

#include "moelens/error.h"
#include "moelens/scheduler.h"

namespace moelens {

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
    case StopReason::error: return "error";
    }
    return "?";
}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) : m_model(std::move(model))
{
    if (!m_model) throw Error("Session: no model");
    SchedulerOptions so;
    so.virtual_devices = options.virtual_devices;
    so.virtual_device_memory = options.virtual_device_memory;
    m_scheduler = std::make_unique<Scheduler>(m_model, so);
    m_id = m_scheduler->open(options.attention, options.max_tokens, options.moe);
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::step(int token, const EventSink& on_event, bool is_prompt)
{
    m_scheduler->feed(m_id, std::span<const int>(&token, 1), on_event, is_prompt);
    return logits();
}

std::span<const float> Session::prefill(std::span<const int> tokens, const EventSink& on_event,
                                        const std::atomic<bool>* cancel)
{
    m_scheduler->feed(m_id, tokens, on_event, true, cancel);
    return logits();
}

std::span<const float> Session::logits() const { return m_scheduler->logits(m_id); }

GenerationResult Session::generate(std::span<const int> prompt, const SamplingParams& params, const EventSink& on_event,
                                   const std::atomic<bool>* cancel, const GenerateHooks& hooks)
{
    GenerationResult result;
    bool done = false;
    GenerationRequest req;
    req.prompt.assign(prompt.begin(), prompt.end());
    req.sampling = params;
    req.cancel = cancel;
    req.on_event = on_event;
    req.hooks = hooks;
    req.on_finish = [&](SequenceId, const GenerationResult& r) {
        result = r;
        done = true;
    };
    m_scheduler->generate(m_id, std::move(req));
    while (!done) m_scheduler->step();
    if (result.reason == StopReason::error) {
        if (result.failed_device >= 0) throw DeviceFault(result.failed_device, result.error);
        throw Error(result.error);
    }
    return result;
}

void Session::reset()
{
    m_scheduler->rewind(m_id, 0);
    m_scheduler->reset_stage_times();
}

int Session::keep_prefix(std::span<const int> tokens)
{
    const std::vector<int>& have = this->tokens();
    std::size_t same = 0;
    while (same < have.size() && same < tokens.size() && have[same] == tokens[same]) ++same;
    if (!tokens.empty()) same = std::min(same, tokens.size() - 1);
    m_scheduler->rewind(m_id, static_cast<int>(same));
    return static_cast<int>(same);
}

const std::vector<int>& Session::tokens() const { return m_scheduler->tokens(m_id); }
int Session::position() const { return static_cast<int>(tokens().size()); }
int Session::max_tokens() const { return m_scheduler->max_tokens(m_id); }
CacheStats Session::cache_stats() const { return m_scheduler->cache_stats(m_id); }
const StageTimes& Session::stage_times() const { return m_scheduler->stage_times(); }
const ExpertTraffic& Session::expert_traffic() const { return m_scheduler->expert_traffic(); }
const ExpertTraffic* Session::generation_traffic() const { return m_scheduler->expert_traffic(m_id); }
const ExpertPlacement* Session::placement() const { return m_scheduler->placement(); }
AttentionPath Session::attention() const { return m_scheduler->attention(m_id); }
void Session::set_attention(AttentionPath path) { m_scheduler->set_attention(m_id, path); }
const Model& Session::model() const { return *m_model; }

}  // namespace moelens
