// Continuous batching over the step of runtime/step.h (see moelens/scheduler.h).
//
// Each step is planned afresh: first one row for every decoding sequence (its
// token sampled after the previous step), then prompt chunks of the sequences
// still reading their prompts, in the order they arrived, until the step's
// token budget is spent. With more sequences than the budget has rows, each
// gets one row, in turns. After the step every sequence gets its events and, where its
// logits are new, samples its next token and applies its stop rules. A sequence
// that stops leaves before the next step; one that arrives joins it.
#include "moelens/scheduler.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <optional>

#include "moelens/error.h"
#include "runtime/step.h"

namespace moelens {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

struct Job {
    GenerationRequest req;
    Sampler sampler;
    GenerationResult result;
    bool decoding = false;       // prompt read: `pending` is the next token to feed
    bool started = false;        // prefix sharing decided
    std::size_t prompt_fed = 0;  // of req.prompt
    int pending = 0;
    Clock::time_point t0, t1;
    std::string text_tail;       // recent decoded text, for stop strings
    std::size_t longest_stop = 0;

    explicit Job(GenerationRequest r) : req(std::move(r)), sampler(req.sampling)
    {
        for (const auto& s : req.sampling.stop_strings) longest_stop = std::max(longest_stop, s.size());
    }
    bool cancelled() const { return req.cancel && req.cancel->load(std::memory_order_relaxed); }
};

struct Entry {
    SequenceId id = 0;
    SequenceState seq;
    TokenEvent event;          // reused for every event of this sequence
    std::unique_ptr<Job> job;  // the running generation, if any
    bool auto_close = false;   // submitted: closed when it finishes
    bool closing = false;
};

class SchedulerImpl {
public:
    SchedulerImpl(std::shared_ptr<const Model> model, SchedulerOptions options)
        : model(std::move(model)), m(this->model->impl()), opt(options), pool(m.config, options.cache_blocks)
    {
        opt.step_tokens = std::max(1, opt.step_tokens);
        if (opt.virtual_devices < 0) throw Error("virtual devices " + std::to_string(opt.virtual_devices) + " is negative");
        if (opt.virtual_devices > 0) {
            if (m.device) throw Error("virtual devices split the CPU engine; this model runs on " + m.device->name());
            placement = place_experts(this->model->info(), opt.virtual_devices);
            ws.placement = &*placement;
            ws.traffic = &traffic;
            ws.device_memory = opt.virtual_device_memory;
            ws.device_lost.assign(static_cast<std::size_t>(placement->devices), 0);
            for (int d = 0; d < placement->devices; ++d)
                if (opt.virtual_device_memory > 0 && placement->weight_bytes[static_cast<std::size_t>(d)] >= opt.virtual_device_memory)
                    throw Error("virtual device " + std::to_string(d) + " cannot hold its weights: they take " +
                                std::to_string(placement->weight_bytes[static_cast<std::size_t>(d)]) + " bytes of its " +
                                std::to_string(opt.virtual_device_memory) + " (more memory per device or more devices)");
        }
        reset_traffic();
    }

    ExpertTraffic empty_traffic() const
    {
        return ExpertTraffic::empty(placement ? placement->devices : 1,
                                    static_cast<std::uint64_t>(m.config.hidden_size) * sizeof(float));
    }
    void reset_traffic() { traffic = empty_traffic(); }
    void reset_traffic(Entry& e) const
    {
        if (!placement) return;
        e.seq.traffic = empty_traffic();
        e.seq.traffic.home = e.seq.home_device;
    }
    ~SchedulerImpl()
    {
        for (auto& [id, e] : seqs) pool.release(e->seq.blocks);
    }

    std::shared_ptr<const Model> model;
    const ModelImpl& m;
    SchedulerOptions opt;
    LatentPool pool;
    std::optional<ExpertPlacement> placement;  // virtual devices
    ExpertTraffic traffic;
    StepWorkspace ws;
    std::map<SequenceId, std::unique_ptr<Entry>> seqs;  // by id = in arrival order
    SequenceId next_id = 1;
    int last_rows = 0;
    bool in_step = false;
    SequenceId serve_after = 0;  // with more sequences than step_tokens: the last one served

    Entry& get(SequenceId id) const
    {
        const auto it = seqs.find(id);
        if (it == seqs.end() || it->second->closing) throw Error("no sequence " + std::to_string(id) + " in this scheduler");
        return *it->second;
    }

    void check_tokens(std::span<const int> tokens) const
    {
        const int vocab = m.config.vocab_size;
        for (int t : tokens)
            if (t < 0 || t >= vocab)
                throw Error("token id " + std::to_string(t) + " is outside the vocabulary (vocab_size " + std::to_string(vocab) +
                            ")");
    }

    void check_attention(AttentionPath path) const
    {
        if (path == AttentionPath::naive && m.device)
            throw Error("the naive attention path is not available on " + m.device->name() +
                        ": the GPU backend runs absorbed attention only");
    }

    // The routing of a sequence with these settings (checked here, for every caller).
    SequenceRouting routing(MoeSettings moe) const
    {
        const ModelConfig& c = m.config;
        check_moe_settings(c, moe);
        if (m.device && !moe.is_default(c))
            throw Error("MoE settings other than the model's are not available on " + m.device->name() +
                        " yet: the GPU's router uses the model's own");
        SequenceRouting r;
        r.params = m.route;
        if (c.n_routed_experts == 0) return r;
        moe.experts_per_token = effective_experts_per_token(c, moe);
        moe.device_limit = effective_device_limit(c, moe);
        std::sort(moe.disabled.begin(), moe.disabled.end(),
                  [](const DisabledExpert& a, const DisabledExpert& b) { return std::pair(a.layer, a.expert) < std::pair(b.layer, b.expert); });
        r.params.top_k = moe.experts_per_token;
        if (r.params.group_limited) r.params.topk_group = moe.device_limit;
        if (!moe.disabled.empty()) {
            std::vector<int> moe_index(static_cast<std::size_t>(c.num_hidden_layers), -1);
            int n = 0;
            for (int l = 0; l < c.num_hidden_layers; ++l)
                if (c.is_moe_layer(l)) moe_index[static_cast<std::size_t>(l)] = n++;
            r.disabled.assign(static_cast<std::size_t>(n) * c.n_routed_experts, 0);
            for (const DisabledExpert& d : moe.disabled)
                r.disabled[static_cast<std::size_t>(moe_index[static_cast<std::size_t>(d.layer)]) * c.n_routed_experts + d.expert] = 1;
        }
        r.settings = std::move(moe);
        return r;
    }

    Entry& add(AttentionPath path, int max_tokens, MoeSettings moe)
    {
        check_attention(path);
        SequenceRouting route = routing(std::move(moe));
        auto e = std::make_unique<Entry>();
        e->id = next_id++;
        const int limit = m.config.max_position_embeddings;
        e->seq.max_tokens = max_tokens > 0 ? std::min(max_tokens, limit) : limit;
        e->seq.attention = path;
        e->seq.routing = std::move(route);
        // Data-parallel attention: sequences take the devices in turn.
        if (placement) e->seq.home_device = static_cast<int>((e->id - 1) % static_cast<SequenceId>(placement->devices));
        reset_traffic(*e);
        e->seq.logits.resize(static_cast<std::size_t>(m.config.vocab_size));
        StepWorkspace::init_event(m, e->seq.routing.params.top_k, e->event);
        Entry& ref = *e;
        seqs.emplace(ref.id, std::move(e));
        return ref;
    }

    std::string pool_full_message(int need_tokens) const
    {
        return "the latent cache pool is full: " + std::to_string(pool.blocks_used()) + " of " +
               std::to_string(pool.max_blocks()) + " blocks (" + std::to_string(kBlockTokens) +
               " tokens each) are in use, " + std::to_string(need_tokens) + " more tokens do not fit";
    }

    CacheStats stats(const Entry& e, int tokens_held) const
    {
        CacheStats s = pool.stats(e.seq.blocks, tokens_held);
        if (m.device) {
            // The device keeps its own pool of pages, in its own element type.
            const std::uint64_t per_token = static_cast<std::uint64_t>(m.config.num_hidden_layers) *
                                            pool.row_floats() * m.device->cache_element_bytes();
            const MoelensCudaCacheStats d = e.seq.device ? e.seq.device->cache_stats() : MoelensCudaCacheStats{};
            s.bytes_per_token = per_token;
            s.latent_bytes_used = per_token * tokens_held;
            s.block_tokens = d.page_rows;
            s.blocks_held = d.pages_held;
            s.blocks_shared = 0;  // no prefix sharing on the device yet
            s.capacity_tokens = d.pages_held * d.page_rows;
            s.latent_bytes_reserved = per_token * s.capacity_tokens;
            s.pool_blocks_used = d.pool_pages_used;
            s.pool_blocks_free = d.pool_pages_free;
            s.pool_bytes = d.pool_bytes;
        }
        return s;
    }

    bool prepare(Entry& e, int n)
    {
        if (m.device) return true;
        return pool.prepare_write(e.seq.blocks, e.seq.position(), e.seq.position() + n);
    }

    void truncate(Entry& e, int tokens)
    {
        e.seq.tokens.resize(static_cast<std::size_t>(std::min(tokens, e.seq.position())));
        pool.truncate(e.seq.blocks, e.seq.position());
        e.seq.has_logits = false;
    }

    void finish(Entry& e, StopReason reason, std::string error = {}, int failed_device = -1)
    {
        std::unique_ptr<Job> job = std::move(e.job);
        job->result.reason = reason;
        job->result.error = std::move(error);
        job->result.failed_device = failed_device;
        if (placement) job->result.traffic = e.seq.traffic;
        const auto now = Clock::now();
        if (job->decoding || job->t1 != Clock::time_point{})
            job->result.decode_seconds = seconds(job->t1, now);
        else
            job->result.prefill_seconds = seconds(job->t0, now);
        if (e.auto_close) {
            e.closing = true;
            pool.release(e.seq.blocks);
        }
        if (job->req.on_finish) job->req.on_finish(e.id, job->result);
    }

    // The token after the sequence's current logits; stop rules as Session::generate
    // always had them: a stop token is reported but not fed.
    void sample_next(Entry& e)
    {
        Job& j = *e.job;
        if (j.cancelled()) return finish(e, StopReason::cancelled);
        const ModelConfig& c = m.config;
        const int next = j.sampler.sample(e.seq.logits, e.seq.tokens);
        j.result.tokens.push_back(next);
        if (j.req.hooks.on_token) j.req.hooks.on_token(next);
        if (j.req.sampling.stop_at_eos && std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), next) != c.eos_token_ids.end())
            return finish(e, StopReason::eos);
        const auto& stops = j.req.sampling.stop_token_ids;
        if (std::find(stops.begin(), stops.end(), next) != stops.end()) return finish(e, StopReason::stop_token);
        if (j.longest_stop > 0 && j.req.hooks.token_text) {
            j.text_tail += j.req.hooks.token_text(next);
            for (const auto& s : j.req.sampling.stop_strings)
                if (!s.empty() && j.text_tail.find(s) != std::string::npos) return finish(e, StopReason::stop_string);
            // Keep only what a stop string could still span.
            if (j.text_tail.size() > 2 * j.longest_stop + 64) j.text_tail.erase(0, j.text_tail.size() - j.longest_stop);
        }
        if (e.seq.position() >= e.seq.max_tokens) return finish(e, StopReason::context_full);
        j.pending = next;
        j.decoding = true;
    }

    void prompt_done(Entry& e)
    {
        Job& j = *e.job;
        j.t1 = Clock::now();
        j.result.prefill_seconds = seconds(j.t0, j.t1);
        if (j.req.sampling.max_new_tokens <= 0) return finish(e, StopReason::max_new_tokens);
        sample_next(e);
    }

    // The token at position i of what `d` will hold once its prompt is read.
    static int planned_token(const Entry& d, std::size_t i)
    {
        const std::size_t fed = d.seq.tokens.size();
        if (i < fed) return d.seq.tokens[i];
        if (!d.job || d.job->decoding) return -1;
        const std::size_t at = d.job->prompt_fed + (i - fed);
        return at < d.job->req.prompt.size() ? d.job->req.prompt[at] : -1;
    }

    // Decides where a new sequence's prompt starts: after the longest prefix it
    // can share with another sequence's cache. Returns false to wait one step,
    // when a sequence already reading the same prompt will have computed more of
    // it by then (so the shared part is computed once).
    bool start(Entry& e)
    {
        Job& j = *e.job;
        const std::vector<int>& p = j.req.prompt;
        if (!opt.share_prefixes || m.device || e.seq.position() > 0 || p.size() < 2) return j.started = true;
        const Entry* best = nullptr;
        int best_use = 0;
        bool wait = false;
        for (const auto& [id, d] : seqs) {
            // Only a cache computed the same way: the same attention path and routing.
            if (d.get() == &e || d->closing || d->seq.attention != e.seq.attention ||
                d->seq.routing.settings != e.seq.routing.settings)
                continue;
            if (d->job && !d->job->started) continue;  // not reading yet: it may wait for us
            std::size_t fed = 0;
            while (fed < p.size() && fed < d->seq.tokens.size() && d->seq.tokens[fed] == p[fed]) ++fed;
            std::size_t planned = fed;
            while (planned < p.size() && planned_token(*d, planned) == p[planned]) ++planned;
            const int use = static_cast<int>(std::min(fed, p.size() - 1));
            const int could = static_cast<int>(std::min(planned, p.size() - 1));
            if (could >= use + kBlockTokens) wait = true;
            if (use > best_use) {
                best_use = use;
                best = d.get();
            }
        }
        if (wait) return false;
        if (best && best_use > 0) {
            pool.share_prefix(best->seq.blocks, best_use, e.seq.blocks);
            e.seq.tokens.assign(p.begin(), p.begin() + best_use);
            j.prompt_fed = static_cast<std::size_t>(best_use);
            j.result.reused_tokens = best_use;
        }
        return j.started = true;
    }

    struct Planned {
        Entry* e;
        StepItem item;
        bool prompt;
    };

    // Closed sequences leave the map outside step() only: callbacks run inside
    // it may cancel other sequences while their entries are in the plan.
    void sweep()
    {
        if (!in_step) std::erase_if(seqs, [](const auto& kv) { return kv.second->closing; });
    }

    bool step()
    {
        in_step = true;
        struct Done {
            bool& flag;
            ~Done() { flag = false; }
        } done{in_step};
        std::vector<Planned> plan;
        int budget = opt.step_tokens;
        std::vector<Entry*> jobs;  // running, in arrival order
        int decoding = 0;
        for (auto& [id, e] : seqs)
            if (e->job && !e->closing) {
                if (e->job->cancelled()) {
                    finish(*e, StopReason::cancelled);
                    continue;
                }
                jobs.push_back(e.get());
                decoding += e->job->decoding;
            }
        const auto decode_row = [&](Entry* e) {
            plan.push_back({e, {&e->seq, std::span<const int>(&e->job->pending, 1), true}, false});
            --budget;
        };
        // A prompt's next chunk, at most `most` rows; false when it must wait.
        const auto prompt_chunk = [&](Entry* e, int most) {
            Job& j = *e->job;
            if (!j.started && !start(*e)) return false;
            const std::size_t left = j.req.prompt.size() - j.prompt_fed;
            const std::size_t n = std::min(left, static_cast<std::size_t>(most));
            plan.push_back({e, {&e->seq, std::span<const int>(j.req.prompt).subspan(j.prompt_fed, n), n == left}, true});
            budget -= static_cast<int>(n);
            return true;
        };
        if (decoding < budget) {
            // Every decoding sequence gets its row, then the prompts share the rest.
            for (Entry* e : jobs)
                if (e->job->decoding) decode_row(e);
            for (Entry* e : jobs)
                if (!e->job->decoding && budget > 0) prompt_chunk(e, budget);
        } else {
            // More sequences than rows: one row each, in turns from where the last
            // step stopped, so none waits for ever.
            const auto first = std::find_if(jobs.begin(), jobs.end(), [&](const Entry* e) { return e->id > serve_after; });
            std::rotate(jobs.begin(), first, jobs.end());
            serve_after = 0;
            for (Entry* e : jobs) {
                if (budget <= 0) break;
                if (e->job->decoding)
                    decode_row(e);
                else if (!prompt_chunk(e, 1))
                    continue;
                if (budget == 0) serve_after = e->id;
            }
        }
        // Blocks for every row; a sequence the pool cannot take ends with an
        // error and the others go on.
        std::vector<StepItem> items;
        std::vector<Planned> kept;
        for (Planned& p : plan) {
            const int n = static_cast<int>(p.item.tokens.size());
            if (!prepare(*p.e, n)) {
                finish(*p.e, StopReason::error, pool_full_message(n));
                continue;
            }
            items.push_back(p.item);
            kept.push_back(p);
        }
        last_rows = 0;
        for (const StepItem& it : items) last_rows += static_cast<int>(it.tokens.size());
        if (!items.empty()) {
            // A failed step (a device lost or out of memory, a backend error) ends
            // the generations it carried with the message, their sequences as they
            // were before it (the rows it wrote dropped, blocks beyond released);
            // the scheduler stays usable.
            const auto fail = [&](const char* message, int device) {
                for (Planned& p : kept) {
                    truncate(*p.e, p.e->seq.position());
                    if (p.e->job) finish(*p.e, StopReason::error, message, device);
                }
                kept.clear();
            };
            try {
                run_step(m, pool, ws, items);
            } catch (const DeviceFault& ex) {
                fail(ex.what(), ex.device());
            } catch (const std::exception& ex) {
                fail(ex.what(), -1);
            }
        }

        int r = 0;
        for (Planned& p : kept) {
            Entry& e = *p.e;
            const int n = static_cast<int>(p.item.tokens.size());
            const int pos0 = e.seq.position() - n;
            const int r0 = r;
            r += n;
            if (!e.job) continue;  // cancelled by an earlier sequence's callback
            Job& j = *e.job;
            if (p.prompt) {
                bool ended = false;
                for (int t = 0; t < n && !ended; ++t) {
                    // As the one-sequence loop always did: the cancel flag before
                    // each prompt token's event; stopping drops the later rows.
                    if (j.cancelled()) {
                        truncate(e, pos0 + t);
                        finish(e, StopReason::cancelled);
                        ended = true;
                        break;
                    }
                    if (!j.req.on_event) continue;
                    deliver(e, r0 + t, pos0 + t, true);
                    if (!j.req.on_event(e.event)) {
                        truncate(e, pos0 + t + 1);
                        finish(e, StopReason::callback);
                        ended = true;
                    }
                }
                if (ended) continue;
                j.prompt_fed += static_cast<std::size_t>(n);
                if (j.prompt_fed == j.req.prompt.size()) prompt_done(e);
            } else {
                if (j.req.on_event) {
                    deliver(e, r0, pos0, false);
                    if (!j.req.on_event(e.event)) {
                        finish(e, StopReason::callback);
                        continue;
                    }
                }
                if (static_cast<int>(j.result.tokens.size()) >= j.req.sampling.max_new_tokens)
                    finish(e, StopReason::max_new_tokens);
                else
                    sample_next(e);
            }
        }
        in_step = false;
        sweep();
        return running() > 0;
    }

    void deliver(Entry& e, int row, int pos, bool prompt)
    {
        TokenEvent& ev = e.event;
        ev.token = e.seq.tokens[static_cast<std::size_t>(pos)];
        ev.position = pos;
        ev.is_prompt = prompt;
        ws.fill_routing(m, row, ev);
        ev.cache = stats(e, pos + 1);
    }

    int running() const
    {
        int n = 0;
        for (const auto& [id, e] : seqs) n += e->job != nullptr;
        return n;
    }

    void begin(Entry& e, GenerationRequest req)
    {
        if (e.job) throw Error("sequence " + std::to_string(e.id) + " is already generating");
        check_tokens(req.prompt);
        check_sampling(req.sampling);
        if (req.prompt.empty() && !e.seq.has_logits)
            throw Error("generate: empty prompt and nothing fed before: no logits to sample from");
        e.job = std::make_unique<Job>(std::move(req));
        reset_traffic(e);
        Job& j = *e.job;
        j.t0 = Clock::now();
        j.result.prompt_tokens = static_cast<int>(j.req.prompt.size());
        if (j.req.prompt.size() > static_cast<std::size_t>(e.seq.max_tokens - e.seq.position()))
            return finish(e, StopReason::context_full);
        if (j.req.prompt.empty()) {
            j.started = true;
            prompt_done(e);
        }
    }
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options)
{
    if (!model) throw Error("Scheduler: no model");
    m_impl = std::make_unique<SchedulerImpl>(std::move(model), options);
}

Scheduler::~Scheduler() = default;
Scheduler::Scheduler(Scheduler&&) noexcept = default;
Scheduler& Scheduler::operator=(Scheduler&&) noexcept = default;

SequenceId Scheduler::submit(GenerationRequest request)
{
    m_impl->check_tokens(request.prompt);
    check_sampling(request.sampling);
    if (request.prompt.empty()) throw Error("submit: a new sequence needs a prompt");
    Entry& e = m_impl->add(request.attention, request.max_tokens, request.moe);
    e.auto_close = true;
    const SequenceId id = e.id;
    m_impl->begin(e, std::move(request));
    m_impl->sweep();
    return id;
}

SequenceId Scheduler::open(AttentionPath attention, int max_tokens, MoeSettings moe)
{
    return m_impl->add(attention, max_tokens, std::move(moe)).id;
}

void Scheduler::generate(SequenceId id, GenerationRequest request) { m_impl->begin(m_impl->get(id), std::move(request)); }

void Scheduler::close(SequenceId id)
{
    Entry& e = m_impl->get(id);
    if (e.job) throw Error("sequence " + std::to_string(id) + " is generating: cancel it first");
    e.closing = true;
    m_impl->pool.release(e.seq.blocks);
    m_impl->sweep();
}

int Scheduler::feed(SequenceId id, std::span<const int> tokens, const EventSink& on_event, bool is_prompt,
                    const std::atomic<bool>* cancel)
{
    SchedulerImpl& s = *m_impl;
    Entry& e = s.get(id);
    if (e.job) throw Error("sequence " + std::to_string(id) + " is generating");
    s.check_tokens(tokens);
    std::size_t done = 0;
    while (done < tokens.size()) {
        if (cancel && cancel->load(std::memory_order_relaxed)) break;
        const int room = e.seq.max_tokens - e.seq.position();
        if (room <= 0) throw Error("context full: " + std::to_string(e.seq.max_tokens) + " tokens");
        const int n = static_cast<int>(std::min({tokens.size() - done, static_cast<std::size_t>(s.opt.step_tokens),
                                                 static_cast<std::size_t>(room)}));
        if (!s.prepare(e, n)) throw Error(s.pool_full_message(n));
        // Logits after every chunk, so that a feed stopped early leaves those of
        // its last token (one lm_head product per chunk).
        const StepItem item{&e.seq, tokens.subspan(done, static_cast<std::size_t>(n)), true};
        try {
            run_step(s.m, s.pool, s.ws, std::span<const StepItem>(&item, 1));
        } catch (...) {
            s.truncate(e, e.seq.position());  // as before this chunk: its rows dropped, blocks released
            throw;
        }
        s.last_rows = n;
        if (on_event)
            for (int t = 0; t < n; ++t) {
                // Every token's event is delivered, whatever the sink returns.
                s.deliver(e, t, e.seq.position() - n + t, is_prompt);
                on_event(e.event);
            }
        done += static_cast<std::size_t>(n);
    }
    return static_cast<int>(done);
}

void Scheduler::rewind(SequenceId id, int tokens)
{
    Entry& e = m_impl->get(id);
    if (e.job) throw Error("sequence " + std::to_string(id) + " is generating");
    if (tokens < e.seq.position()) m_impl->truncate(e, std::max(0, tokens));
}

void Scheduler::set_attention(SequenceId id, AttentionPath path)
{
    m_impl->check_attention(path);
    m_impl->get(id).seq.attention = path;
}

AttentionPath Scheduler::attention(SequenceId id) const { return m_impl->get(id).seq.attention; }
int Scheduler::max_tokens(SequenceId id) const { return m_impl->get(id).seq.max_tokens; }

void Scheduler::cancel(SequenceId id)
{
    Entry& e = m_impl->get(id);
    if (e.job) m_impl->finish(e, StopReason::cancelled);
    m_impl->sweep();
}

bool Scheduler::step() { return m_impl->step(); }

void Scheduler::run(const std::atomic<bool>* stop)
{
    while (running() > 0) {
        if (stop && stop->load(std::memory_order_relaxed)) {
            std::vector<SequenceId> ids;
            for (const auto& [id, e] : m_impl->seqs)
                if (e->job) ids.push_back(id);
            for (SequenceId id : ids) cancel(id);
            return;
        }
        step();
    }
}

int Scheduler::running() const { return m_impl->running(); }
const std::vector<int>& Scheduler::tokens(SequenceId id) const { return m_impl->get(id).seq.tokens; }

std::span<const float> Scheduler::logits(SequenceId id) const
{
    const SequenceState& s = m_impl->get(id).seq;
    if (!s.has_logits) return {};
    return s.logits;
}

CacheStats Scheduler::cache_stats(SequenceId id) const
{
    const Entry& e = m_impl->get(id);
    return m_impl->stats(e, e.seq.position());
}

PoolStats Scheduler::pool_stats() const
{
    const LatentPool& p = m_impl->pool;
    PoolStats s;
    s.block_tokens = kBlockTokens;
    s.block_bytes = p.block_bytes();
    s.blocks_used = p.blocks_used();
    s.blocks_shared = p.blocks_shared();
    s.blocks_free = p.blocks_free();
    s.max_blocks = p.max_blocks();
    s.bytes_allocated = static_cast<std::uint64_t>(p.blocks_allocated()) * p.block_bytes();
    return s;
}

const StageTimes& Scheduler::stage_times() const { return m_impl->ws.times; }
const ExpertPlacement* Scheduler::placement() const { return m_impl->placement ? &*m_impl->placement : nullptr; }
const ExpertTraffic& Scheduler::expert_traffic() const { return m_impl->traffic; }
void Scheduler::reset_expert_traffic() { m_impl->reset_traffic(); }

const ExpertTraffic* Scheduler::expert_traffic(SequenceId id) const
{
    const Entry& e = m_impl->get(id);
    return m_impl->placement ? &e.seq.traffic : nullptr;
}

void Scheduler::lose_device(int device)
{
    SchedulerImpl& s = *m_impl;
    if (!s.placement) throw Error("lose_device: this scheduler has no virtual devices");
    if (device < 0 || device >= s.placement->devices)
        throw Error("lose_device: device " + std::to_string(device) + " is outside 0.." + std::to_string(s.placement->devices - 1));
    s.ws.device_lost[static_cast<std::size_t>(device)] = 1;
}
void Scheduler::reset_stage_times() { m_impl->ws.times = {}; }
int Scheduler::last_step_rows() const { return m_impl->last_rows; }
const Model& Scheduler::model() const { return *m_impl->model; }

}  // namespace moelens
