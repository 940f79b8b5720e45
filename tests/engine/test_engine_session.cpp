// The runtime API as the UI and the CLI drive it: the demo model, sessions,
// events, sampling, stop conditions, cancellation from another thread.
#include <QTemporaryDir>
#include <QTest>

#include <atomic>
#include <cmath>
#include <fstream>
#include <set>
#include <thread>

#include "moelens/demo.h"
#include "moelens/error.h"
#include "moelens/session.h"

using namespace moelens;
namespace fs = std::filesystem;

namespace {

std::string file_bytes(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const std::vector<int> kPrompt = {0, 1234, 99, 128000, 5, 77777, 42, 128814, 3000, 17};

}  // namespace

class TestEngineSession : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    fs::path m_demo;
    std::shared_ptr<const Model> m_model;

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_demo = fs::path(m_tmp.path().toStdString()) / "demo";
        write_demo_model(m_demo, DemoModelSpec{7, fs::path(MOELENS_RESOURCES_DIR) / "tokenizer"});
        std::vector<LoadProgress> seen;
        m_model = load_model(m_demo, LoadOptions{2, [&](const LoadProgress& p) {
                                                     seen.push_back(p);
                                                     return true;
                                                 }});
        QVERIFY(seen.size() >= 2);
        QCOMPARE(seen.back().stage, std::string("ready"));
        QCOMPARE(seen.back().done, seen.back().total);
    }

    void demo_model_layout()
    {
        for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
            QVERIFY2(fs::is_regular_file(m_demo / f), f);
        const ModelInfo& info = m_model->info();
        QVERIFY(info.is_demo);
        QVERIFY(info.config.vocab_size >= 128815);  // every id of the shipped tokenizer
        QCOMPARE(info.weights_dtype, std::string("BF16"));
        QCOMPARE(info.moe_layers, (std::vector<int>{1, 2, 3}));
        QCOMPARE(info.n_group, 4);
        QVERIFY(info.bytes_on_disk < 32u << 20);
        QVERIFY(info.active_params_per_token < info.total_params);
        QVERIFY(info.latent_cache_bytes_per_token < info.mha_cache_bytes_per_token);
        // Same seed, same bytes; another seed, other weights.
        const auto again = fs::path(m_tmp.path().toStdString()) / "demo-again";
        write_demo_model(again, DemoModelSpec{7, fs::path(MOELENS_RESOURCES_DIR) / "tokenizer"});
        QVERIFY(file_bytes(again / "model.safetensors") == file_bytes(m_demo / "model.safetensors"));
        write_demo_model(again, DemoModelSpec{8, fs::path(MOELENS_RESOURCES_DIR) / "tokenizer"});
        QVERIFY(file_bytes(again / "model.safetensors") != file_bytes(m_demo / "model.safetensors"));
        QVERIFY_THROWS_EXCEPTION(ModelError, write_demo_model(again, DemoModelSpec{1, m_demo / "no-such-dir"}));
    }

    void load_cancel_and_inspect()
    {
        QVERIFY_THROWS_EXCEPTION(Cancelled, load_model(m_demo, LoadOptions{1, [](const LoadProgress& p) { return p.done < 2; }}));
        QCOMPARE(inspect_model(m_demo).total_params, m_model->info().total_params);
    }

    void events_for_every_token()
    {
        Session s(m_model);
        std::vector<TokenEvent> events;
        SamplingParams p;
        p.seed = 11;
        p.max_new_tokens = 12;
        p.stop_at_eos = false;
        const GenerationResult r = s.generate(kPrompt, p, [&](const TokenEvent& e) {
            events.push_back(e);
            return true;
        });
        QCOMPARE(r.reason, StopReason::max_new_tokens);
        QCOMPARE(r.tokens.size(), std::size_t(12));
        QCOMPARE(events.size(), kPrompt.size() + 12);
        const ModelConfig& c = m_model->config();
        std::set<int> experts_seen;
        for (std::size_t i = 0; i < events.size(); ++i) {
            const TokenEvent& e = events[i];
            QCOMPARE(e.position, int(i));
            QCOMPARE(e.is_prompt, i < kPrompt.size());
            QCOMPARE(e.token, i < kPrompt.size() ? kPrompt[i] : r.tokens[i - kPrompt.size()]);
            QCOMPARE(e.routing.size(), std::size_t(3));
            for (const RoutingRecord& rr : e.routing) {
                QCOMPARE(rr.experts.size(), std::size_t(4));
                std::set<int> groups;
                for (std::size_t j = 0; j < rr.experts.size(); ++j) {
                    QCOMPARE(rr.groups[j], rr.experts[j] / 4);
                    groups.insert(rr.groups[j]);
                    experts_seen.insert(rr.experts[j]);
                    if (j > 0) QVERIFY(rr.weights[j] <= rr.weights[j - 1]);
                    QVERIFY(rr.weights[j] > 0.0f && rr.weights[j] <= 1.0f);
                }
                QVERIFY(groups.size() <= 2);  // topk_group = 2
            }
            QCOMPARE(e.cache.tokens_held, int(i + 1));
            const std::uint64_t per_token_latent = std::uint64_t(c.num_hidden_layers) * (c.kv_lora_rank + c.qk_rope_head_dim) * 4;
            const std::uint64_t per_token_mha = std::uint64_t(c.num_hidden_layers) * c.num_attention_heads *
                                                (c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim) * 4;
            QCOMPARE(e.cache.latent_bytes_used, per_token_latent * (i + 1));
            QCOMPARE(e.cache.mha_equivalent_bytes, per_token_mha * (i + 1));
            QVERIFY(e.cache.latent_bytes_reserved >= e.cache.latent_bytes_used);
        }
        QVERIFY2(experts_seen.size() >= 8, "the demo router should spread tokens over many experts");
        QCOMPARE(s.position(), int(kPrompt.size() + 12));
    }

    void same_seed_same_tokens()
    {
        SamplingParams p;
        p.seed = 99;
        p.max_new_tokens = 20;
        p.stop_at_eos = false;
        p.repetition_penalty = 1.1f;
        p.min_p = 0.05f;
        Session a(m_model), b(m_model);
        const auto ra = a.generate(kPrompt, p);
        const auto rb = b.generate(kPrompt, p);
        QCOMPARE(ra.tokens, rb.tokens);
        p.seed = 100;
        Session c(m_model);
        QVERIFY(c.generate(kPrompt, p).tokens != ra.tokens);
    }

    void absorbed_matches_naive()
    {
        Session a(m_model, SessionOptions{AttentionPath::absorbed, 0});
        Session n(m_model, SessionOptions{AttentionPath::naive, 0});
        double worst = 0.0;
        for (int t : kPrompt) {
            const auto la = a.step(t);
            const auto ln = n.step(t);
            for (std::size_t i = 0; i < la.size(); ++i) worst = std::max(worst, double(std::abs(la[i] - ln[i])));
        }
        QVERIFY2(worst < 1e-3, qPrintable(QString::number(worst)));
    }

    void stop_conditions()
    {
        // Greedy: the first generated token is known, so it can be made a stop token.
        Session s(m_model);
        const auto first = s.generate(kPrompt, SamplingParams::greedy()).tokens.at(0);
        SamplingParams p = SamplingParams::greedy();
        p.stop_token_ids = {first};
        s.reset();
        auto r = s.generate(kPrompt, p);
        QCOMPARE(r.reason, StopReason::stop_token);
        QCOMPARE(r.tokens, std::vector<int>{first});

        // Stop strings on the text the hook returns: the fifth token "prints" STOP.
        s.reset();
        int n = 0;
        GenerateHooks hooks;
        hooks.token_text = [&](int) { return ++n == 5 ? std::string("xxSTOPyy") : std::string("a"); };
        p = SamplingParams::greedy();
        p.stop_at_eos = false;
        p.stop_strings = {"STOP"};
        r = s.generate(kPrompt, p, {}, nullptr, hooks);
        QCOMPARE(r.reason, StopReason::stop_string);
        QCOMPARE(r.tokens.size(), std::size_t(5));

        // A stop string split across tokens is found too.
        s.reset();
        n = 0;
        hooks.token_text = [&](int) { return ++n == 3 ? std::string("ST") : n == 4 ? std::string("OP") : std::string("b"); };
        r = s.generate(kPrompt, p, {}, nullptr, hooks);
        QCOMPARE(r.reason, StopReason::stop_string);
        QCOMPARE(r.tokens.size(), std::size_t(4));

        // The event callback returning false stops.
        s.reset();
        int events = 0;
        r = s.generate(kPrompt, p, [&](const TokenEvent&) { return ++events < 3; });
        QCOMPARE(r.reason, StopReason::callback);
        QCOMPARE(events, 3);

        // The context limit.
        Session small(m_model, SessionOptions{AttentionPath::absorbed, 12});
        p.max_new_tokens = 100;
        r = small.generate(kPrompt, p);
        QCOMPARE(r.reason, StopReason::context_full);
        QCOMPARE(small.position(), 12);
        QVERIFY_THROWS_EXCEPTION(Error, small.step(1));
        QVERIFY_THROWS_EXCEPTION(Error, s.step(m_model->config().vocab_size));
        Session empty(m_model);
        QVERIFY_THROWS_EXCEPTION(Error, empty.generate({}, p));
    }

    void cancel_from_another_thread()
    {
        Session s(m_model);
        std::atomic<bool> cancel{false};
        std::atomic<int> events{0};
        int events_at_cancel = -1;
        SamplingParams p;
        p.max_new_tokens = 3000;
        p.stop_at_eos = false;
        std::thread canceller([&] {
            while (events.load() < 15) std::this_thread::yield();
            events_at_cancel = events.load();
            cancel = true;
        });
        const GenerationResult r = s.generate(kPrompt, p, [&](const TokenEvent&) {
            ++events;
            // Give the other thread time to act while this token is "in flight".
            if (events.load() >= 15) std::this_thread::sleep_for(std::chrono::milliseconds(20));
            return true;
        }, &cancel);
        canceller.join();
        QCOMPARE(r.reason, StopReason::cancelled);
        // The flag is checked once per token: at most the token in flight finishes.
        QVERIFY2(events.load() <= events_at_cancel + 1, qPrintable(QString("%1 events, cancel at %2").arg(events.load()).arg(events_at_cancel)));
    }

    void reset_and_reuse()
    {
        Session s(m_model);
        const auto l = s.prefill(kPrompt);
        const std::vector<float> first(l.begin(), l.end());
        s.reset();
        QVERIFY(s.logits().empty());
        QCOMPARE(s.position(), 0);
        const auto again = s.prefill(kPrompt);
        QVERIFY(std::equal(again.begin(), again.end(), first.begin()));
    }

    // Two sessions on one model from two threads give what they give alone.
    void sessions_on_two_threads()
    {
        SamplingParams p;
        p.seed = 5;
        p.max_new_tokens = 16;
        p.stop_at_eos = false;
        Session solo(m_model);
        const auto want = solo.generate(kPrompt, p).tokens;
        std::vector<int> got[2];
        std::thread t[2];
        for (int i = 0; i < 2; ++i)
            t[i] = std::thread([&, i] {
                Session s(m_model);
                got[i] = s.generate(kPrompt, p).tokens;
            });
        for (auto& th : t) th.join();
        QCOMPARE(got[0], want);
        QCOMPARE(got[1], want);
    }

    void sampler_rules()
    {
        const std::vector<float> logits = {1.0f, 3.0f, 2.9f, -1.0f};
        const std::vector<int> none;
        Sampler greedy(SamplingParams::greedy());
        QCOMPARE(greedy.sample(logits, none), 1);
        QCOMPARE(argmax(logits), 1);
        // Repetition penalty: token 1 already present, 3/1.5 = 2 < 2.9.
        SamplingParams rp = SamplingParams::greedy();
        rp.repetition_penalty = 1.5f;
        Sampler pen(rp);
        QCOMPARE(pen.sample(logits, std::vector<int>{1}), 2);
        // top_k = 1, a tiny top_p or min_p = 1 all leave only the best token.
        for (int mode = 0; mode < 3; ++mode) {
            SamplingParams p;
            p.temperature = 1.0f;
            p.top_k = mode == 0 ? 1 : 0;
            p.top_p = mode == 1 ? 1e-6f : 1.0f;
            p.min_p = mode == 2 ? 1.0f : 0.0f;
            Sampler s(p);
            for (int i = 0; i < 50; ++i) QCOMPARE(s.sample(logits, none), 1);
        }
        // top_k = 2 never picks outside the two best; both do come up.
        SamplingParams p;
        p.temperature = 1.0f;
        p.top_k = 2;
        p.top_p = 1.0f;
        Sampler s(p);
        std::set<int> picked;
        for (int i = 0; i < 200; ++i) picked.insert(s.sample(logits, none));
        QCOMPARE(picked, (std::set<int>{1, 2}));
    }
};

QTEST_GUILESS_MAIN(TestEngineSession)
#include "test_engine_session.moc"
