// Many sequences in one step (moelens/scheduler.h) and the paged latent pool:
// goldens through mixed batches, a sequence alone and in a batch, prefix sharing
// and copy-on-write, per-sequence sampling, cancel, a full pool, block accounting.
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <map>
#include <random>

#include "golden_compare.h"
#include "moelens/demo.h"
#include "moelens/error.h"
#include "moelens/safetensors.h"
#include "moelens/scheduler.h"
#include "moelens/session.h"
#include "runtime/latent_pool.h"

using namespace moelens;
using namespace moelens::testing;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(MOELENS_FIXTURES_DIR) / "golden";

// What one sequence produced: its tokens, the logits each token was sampled
// from, and per MoE layer the experts of every token fed (prompt, then generated).
struct Run {
    GenerationResult result;
    std::vector<std::vector<float>> logits;
    std::map<int, std::vector<std::vector<int>>> experts;
    int events = 0;
    bool finished = false;
};

// A request that records into `run`; `sched` is where the logits are read from.
GenerationRequest recording(Scheduler& sched, std::vector<int> prompt, const SamplingParams& p, Run& run, SequenceId* id)
{
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.sampling = p;
    r.on_event = [&run](const TokenEvent& e) {
        ++run.events;
        for (const RoutingRecord& rec : e.routing) run.experts[rec.layer].push_back(rec.experts);
        return true;
    };
    r.hooks.on_token = [&sched, &run, id](int) {
        const auto l = sched.logits(*id);
        run.logits.emplace_back(l.begin(), l.end());
    };
    r.on_finish = [&run](SequenceId, const GenerationResult& g) {
        run.result = g;
        run.finished = true;
    };
    return r;
}

std::vector<int> random_prompt(std::mt19937& rng, int n, int vocab)
{
    std::uniform_int_distribution<int> d(0, vocab - 1);
    std::vector<int> t(static_cast<std::size_t>(n));
    for (int& v : t) v = d(rng);
    return t;
}

double max_logit_diff(const Run& a, const Run& b)
{
    double worst = 0.0;
    for (std::size_t i = 0; i < std::min(a.logits.size(), b.logits.size()); ++i)
        worst = std::max(worst, max_abs_diff(a.logits[i], b.logits[i]).max_abs);
    return worst;
}

SamplingParams sampled(std::uint64_t seed, int n)
{
    SamplingParams p;
    p.temperature = 0.9f;
    p.top_k = 50;
    p.top_p = 0.95f;
    p.seed = seed;
    p.max_new_tokens = n;
    p.stop_at_eos = false;
    return p;
}

}  // namespace

class TestScheduler : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    std::shared_ptr<const Model> m_demo;

    // `prompt` alone through a Session (the one-sequence case).
    Run alone(const std::vector<int>& prompt, const SamplingParams& p, const std::shared_ptr<const Model>& model)
    {
        Scheduler s(model);
        Run run;
        SequenceId id = 0;
        id = s.submit(recording(s, prompt, p, run, &id));
        s.run();
        return run;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        const fs::path dir = fs::path(m_tmp.path().toStdString()) / "demo";
        write_demo_model(dir, DemoModelSpec{7, fs::path(MOELENS_RESOURCES_DIR) / "tokenizer"});
        m_demo = load_model(dir, LoadOptions{2, {}});
    }

    // The golden prompt as one sequence of a batch with three others (longer
    // and shorter prompts, sampled and greedy, joining at different steps):
    // greedy tokens, routing and logits match the reference implementation, and
    // equal the sequence run alone (bit for bit for the tokens and routing;
    // logits within 1e-4, a tenth of the golden tolerance: a row's matrix products run as a GEMM over the batch
    // instead of a one-row matvec, which sums in another order).
    void golden_in_mixed_batch_data()
    {
        QTest::addColumn<QString>("variant");
        for (const char* v : {"lite", "v2", "v2-f32"}) QTest::newRow(v) << QString(v);
    }
    void golden_in_mixed_batch()
    {
        QFETCH(QString, variant);
        const fs::path dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const ModelConfig& c = model->config();
        const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
        const std::vector<int> want_greedy = as_int(golden.to_i64("greedy_tokens"));
        SamplingParams greedy = SamplingParams::greedy();
        greedy.max_new_tokens = static_cast<int>(want_greedy.size());
        greedy.stop_at_eos = false;

        const Run solo = alone(tokens, greedy, model);
        QCOMPARE(solo.result.tokens, want_greedy);

        SchedulerOptions opt;
        opt.step_tokens = 7;  // prompts in several chunks, mixed with decode rows
        Scheduler s(model, opt);
        std::mt19937 rng(3);
        Run runs[4];
        SequenceId ids[4] = {};
        ids[0] = s.submit(recording(s, random_prompt(rng, 11, c.vocab_size), sampled(1, 9), runs[0], &ids[0]));
        s.step();
        ids[1] = s.submit(recording(s, tokens, greedy, runs[1], &ids[1]));
        ids[2] = s.submit(recording(s, random_prompt(rng, 3, c.vocab_size), greedy, runs[2], &ids[2]));
        s.step();
        s.step();
        ids[3] = s.submit(recording(s, random_prompt(rng, 20, c.vocab_size), sampled(2, 4), runs[3], &ids[3]));
        s.run();
        for (const Run& r : runs) QVERIFY(r.finished);

        const Run& got = runs[1];
        QCOMPARE(got.result.tokens, want_greedy);
        QCOMPARE(got.result.reason, StopReason::max_new_tokens);
        QCOMPARE(got.experts, solo.experts);
        const double vs_solo = max_logit_diff(got, solo);
        QVERIFY2(vs_solo <= 1e-4, qPrintable(QString("in a batch vs alone: logits differ by %1").arg(vs_solo)));
        // The logits each greedy token was taken from: the last prompt row, then
        // every generated token's row but the last.
        const std::vector<float> want_logits = golden.to_f32("logits");
        const std::vector<float> last(want_logits.end() - c.vocab_size, want_logits.end());
        QVERIFY(max_abs_diff(got.logits[0], last).max_abs <= 1e-3);
        const std::vector<float> want_gl = golden.to_f32("greedy_logits");
        for (std::size_t i = 1; i < got.logits.size(); ++i) {
            const std::vector<float> row(want_gl.begin() + static_cast<std::ptrdiff_t>((i - 1) * c.vocab_size),
                                         want_gl.begin() + static_cast<std::ptrdiff_t>(i * c.vocab_size));
            const Diff d = max_abs_diff(got.logits[i], row);
            QVERIFY2(d.max_abs <= 1e-3, qPrintable(QString("greedy step %1 differs by %2").arg(i).arg(d.max_abs)));
        }
        // Routing of the prompt rows against the golden.
        const std::size_t k = c.num_experts_per_tok;
        for (const auto& [layer, rows] : got.experts) {
            const std::vector<int> want_idx = as_int(golden.to_i64("topk_idx." + std::to_string(layer)));
            for (std::size_t t = 0; t < tokens.size(); ++t) {
                std::vector<int> a = rows[t], b(want_idx.begin() + t * k, want_idx.begin() + (t + 1) * k);
                std::sort(a.begin(), a.end());
                std::sort(b.begin(), b.end());
                QCOMPARE(a, b);
            }
        }
        QCOMPARE(s.pool_stats().blocks_used, 0);
    }

    // Per-sequence seeds and settings in one batch give exactly the tokens of the
    // same settings run alone; a sequence cancelled mid-batch stops within one
    // token and the others are undisturbed.
    void batched_sampling_and_cancel()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(9);
        std::vector<std::vector<int>> prompts;
        for (int n : {5, 17, 9, 30}) prompts.push_back(random_prompt(rng, n, vocab));
        SamplingParams greedy = SamplingParams::greedy();
        greedy.max_new_tokens = 24;
        const SamplingParams params[4] = {sampled(11, 24), sampled(12, 24), greedy, sampled(14, 30)};
        Run want[4];
        for (int i = 0; i < 4; ++i) want[i] = alone(prompts[i], params[i], m_demo);

        Scheduler s(m_demo);
        Run runs[4];
        SequenceId ids[4] = {};
        std::atomic<bool> stop_third{false};
        for (int i = 0; i < 4; ++i) {
            GenerationRequest r = recording(s, prompts[i], params[i], runs[i], &ids[i]);
            if (i == 3) r.cancel = &stop_third;
            ids[i] = s.submit(std::move(r));
        }
        int steps = 0;
        while (s.step()) {
            if (++steps == 6) stop_third = true;   // by flag
            if (steps == 4) s.cancel(ids[1]);      // by call
        }
        for (int i : {0, 2}) {
            QCOMPARE(runs[i].result.tokens, want[i].result.tokens);
            QCOMPARE(runs[i].result.reason, want[i].result.reason);
        }
        QCOMPARE(runs[1].result.reason, StopReason::cancelled);
        QCOMPARE(runs[3].result.reason, StopReason::cancelled);
        // What they produced before the stop is what they produce alone.
        for (int i : {1, 3}) {
            const auto& got = runs[i].result.tokens;
            QVERIFY(got.size() < want[i].result.tokens.size());
            QVERIFY(std::equal(got.begin(), got.end(), want[i].result.tokens.begin()));
        }
        QCOMPARE(s.running(), 0);
        QCOMPARE(s.pool_stats().blocks_used, 0);
    }

    // Sequences with a common 40-token prefix: the prefix is computed once and
    // its blocks stored once, and every sequence's logits and tokens are those
    // of the same run without sharing.
    void shared_prefix_matches_unshared()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(5);
        const std::vector<int> prefix = random_prompt(rng, 40, vocab);
        std::vector<std::vector<int>> prompts;
        for (int n : {3, 8, 1}) {
            std::vector<int> p = prefix;
            const auto tail = random_prompt(rng, n, vocab);
            p.insert(p.end(), tail.begin(), tail.end());
            prompts.push_back(p);
        }
        prompts.push_back(prefix);  // the prefix itself: shares all but its last token
        SamplingParams greedy = SamplingParams::greedy();
        greedy.max_new_tokens = 12;
        greedy.stop_at_eos = false;

        std::vector<Run> runs[2];
        int rows_fed[2] = {};
        int max_shared = 0;
        for (int share = 0; share < 2; ++share) {
            SchedulerOptions opt;
            opt.share_prefixes = share == 1;
            opt.step_tokens = 16;
            Scheduler s(m_demo, opt);
            runs[share].resize(prompts.size());
            std::vector<SequenceId> ids(prompts.size());
            for (std::size_t i = 0; i < prompts.size(); ++i)
                ids[i] = s.submit(recording(s, prompts[i], greedy, runs[share][i], &ids[i]));
            while (s.step()) max_shared = std::max(max_shared, s.pool_stats().blocks_shared);
            rows_fed[share] = s.stage_times().tokens;
            QCOMPARE(s.pool_stats().blocks_used, 0);
        }
        for (std::size_t i = 0; i < prompts.size(); ++i) {
            QCOMPARE(runs[1][i].result.tokens, runs[0][i].result.tokens);
            QCOMPARE(runs[1][i].experts.size(), runs[0][i].experts.size());
            const double d = max_logit_diff(runs[1][i], runs[0][i]);
            QVERIFY2(d <= 1e-4, qPrintable(QString("sequence %1: shared vs unshared logits differ by %2").arg(i).arg(d)));
        }
        // The first reads the prefix; each later one reuses it.
        QCOMPARE(runs[1][0].result.reused_tokens, 0);
        for (std::size_t i = 1; i < prompts.size(); ++i) QVERIFY(runs[1][i].result.reused_tokens >= 32);
        QCOMPARE(runs[1][3].result.reused_tokens, 39);
        QVERIFY(max_shared >= 2);
        QVERIFY2(rows_fed[1] <= rows_fed[0] - 3 * 32,
                 qPrintable(QString("rows fed: %1 shared, %2 unshared").arg(rows_fed[1]).arg(rows_fed[0])));
    }

    // Memory follows the tokens held: 8 sequences of 512 tokens hold 4,096
    // tokens' blocks, and with a shared 500-token prompt those are stored once.
    void memory_grows_with_tokens_held()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(2);
        for (bool shared : {false, true}) {
            Scheduler s(m_demo);
            const std::vector<int> common = random_prompt(rng, 500, vocab);
            std::vector<SequenceId> ids;
            for (int i = 0; i < 8; ++i) {
                ids.push_back(s.open());
                std::vector<int> p = shared ? common : random_prompt(rng, 500, vocab);
                const auto tail = random_prompt(rng, 12, vocab);
                p.insert(p.end(), tail.begin(), tail.end());
                if (shared) {
                    GenerationRequest r;
                    r.prompt = p;
                    r.sampling.max_new_tokens = 0;
                    s.generate(ids.back(), std::move(r));
                    s.run();
                } else {
                    s.feed(ids.back(), p);
                }
                QCOMPARE(static_cast<int>(s.tokens(ids.back()).size()), 512);
            }
            const PoolStats ps = s.pool_stats();
            if (!shared) {
                QCOMPARE(ps.blocks_used * ps.block_tokens, 8 * 512);
            } else {
                // 31 full blocks of the prompt once; per sequence its copy of the
                // block where they part (tokens 496..511) = 8 more.
                QVERIFY2(ps.blocks_used <= 31 + 8 + 1, qPrintable(QString("%1 blocks").arg(ps.blocks_used)));
                QVERIFY(ps.blocks_shared >= 31);
                const CacheStats cs = s.cache_stats(ids[3]);
                QCOMPARE(cs.tokens_held, 512);
                QVERIFY(cs.blocks_shared >= 31);
            }
            QCOMPARE(ps.bytes_allocated, static_cast<std::uint64_t>(ps.blocks_used + ps.blocks_free) * ps.block_bytes);
            for (SequenceId id : ids) s.close(id);
            QCOMPARE(s.pool_stats().blocks_used, 0);
        }
    }

    // A pool too small for every sequence: the ones it cannot take end with a
    // clear error; the others finish with the tokens they give alone.
    void full_pool_ends_one_sequence()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(4);
        SchedulerOptions opt;
        opt.cache_blocks = 5;  // 80 tokens
        Scheduler s(m_demo, opt);
        SamplingParams greedy = SamplingParams::greedy();
        greedy.stop_at_eos = false;
        greedy.max_new_tokens = 10;
        std::vector<std::vector<int>> prompts = {random_prompt(rng, 20, vocab), random_prompt(rng, 40, vocab),
                                                 random_prompt(rng, 14, vocab)};
        Run runs[3];
        SequenceId ids[3] = {};
        for (int i = 0; i < 3; ++i) ids[i] = s.submit(recording(s, prompts[i], greedy, runs[i], &ids[i]));
        s.run();
        int errors = 0;
        for (int i = 0; i < 3; ++i) {
            QVERIFY(runs[i].finished);
            if (runs[i].result.reason == StopReason::error) {
                ++errors;
                QVERIFY2(runs[i].result.error.find("latent cache pool is full") != std::string::npos,
                         runs[i].result.error.c_str());
            } else {
                QCOMPARE(runs[i].result.tokens, alone(prompts[i], greedy, m_demo).result.tokens);
            }
        }
        QVERIFY(errors >= 1 && errors < 3);
        QCOMPARE(s.pool_stats().blocks_used, 0);
    }

    // Thousands of sequences joining, finishing and being cancelled at random:
    // no block leaks and the pool never holds more than the live tokens need.
    void block_accounting_over_many_cycles()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(6);
        SchedulerOptions opt;
        opt.step_tokens = 64;
        Scheduler s(m_demo, opt);
        std::vector<SequenceId> live;
        int finished = 0, submitted = 0;
        std::uniform_int_distribution<int> len(1, 40), gen(0, 20), coin(0, 9);
        const std::vector<int> common = random_prompt(rng, 24, vocab);
        while (submitted < 2000) {
            for (int j = coin(rng) / 3; j > 0; --j, ++submitted) {
                GenerationRequest r;
                r.prompt = random_prompt(rng, len(rng), vocab);
                if (coin(rng) < 4) r.prompt.insert(r.prompt.begin(), common.begin(), common.end());
                r.sampling = sampled(static_cast<std::uint64_t>(submitted), gen(rng));
                r.on_finish = [&finished](SequenceId, const GenerationResult&) { ++finished; };
                live.push_back(s.submit(std::move(r)));
            }
            if (coin(rng) == 0 && !live.empty()) {
                const SequenceId id = live[static_cast<std::size_t>(rng() % live.size())];
                try {
                    s.cancel(id);
                } catch (const Error&) {
                    // already finished and closed
                }
            }
            s.step();
            const PoolStats ps = s.pool_stats();
            QVERIFY(ps.blocks_used <= s.running() * 6);  // at most 24 + 40 + 20 tokens each
        }
        s.run();
        QCOMPARE(finished, submitted);
        QCOMPARE(s.running(), 0);
        QCOMPARE(s.pool_stats().blocks_used, 0);
        QCOMPARE(s.pool_stats().blocks_shared, 0);
    }

    // More decoding sequences than rows per step: they take turns, every one
    // finishes with the tokens it gives alone, and no step exceeds its budget.
    void decode_rows_take_turns()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(12);
        SchedulerOptions opt;
        opt.step_tokens = 2;
        Scheduler s(m_demo, opt);
        SamplingParams greedy = SamplingParams::greedy();
        greedy.stop_at_eos = false;
        greedy.max_new_tokens = 6;
        std::vector<std::vector<int>> prompts;
        Run runs[5];
        SequenceId ids[5] = {};
        for (int i = 0; i < 5; ++i) {
            prompts.push_back(random_prompt(rng, 1, vocab));
            ids[i] = s.submit(recording(s, prompts.back(), greedy, runs[i], &ids[i]));
        }
        int steps = 0, longest_wait = 0;
        int last_events[5] = {}, waited[5] = {};
        while (s.step()) {
            QVERIFY(s.last_step_rows() <= 2);
            ++steps;
            for (int i = 0; i < 5; ++i) {
                waited[i] = runs[i].events == last_events[i] && !runs[i].finished ? waited[i] + 1 : 0;
                last_events[i] = runs[i].events;
                longest_wait = std::max(longest_wait, waited[i]);
            }
        }
        for (int i = 0; i < 5; ++i) QCOMPARE(runs[i].result.tokens, alone(prompts[i], greedy, m_demo).result.tokens);
        QVERIFY2(longest_wait <= 3, qPrintable(QString("a sequence waited %1 steps for its turn").arg(longest_wait)));
        QCOMPARE(s.pool_stats().blocks_used, 0);
    }

    // The pool's copy-on-write at the block level.
    void copy_on_write()
    {
        const ModelConfig& c = m_demo->config();
        LatentPool pool(c, 0);
        BlockTable a, b;
        QVERIFY(pool.prepare_write(a, 0, 20));  // 2 blocks
        for (int p = 0; p < 20; ++p)
            for (int l = 0; l < c.num_hidden_layers; ++l) pool.row(a, l, p)[0] = static_cast<float>(100 * l + p);
        pool.share_prefix(a, 18, b);
        QCOMPARE(b.blocks(), 2);
        QCOMPARE(pool.blocks_shared(), 2);
        QCOMPARE(pool.refs(a.id(1)), 2);
        // b writes position 18: its second block becomes its own copy, holding a's 16..17.
        QVERIFY(pool.prepare_write(b, 18, 19));
        QVERIFY(b.id(1) != a.id(1));
        QCOMPARE(b.id(0), a.id(0));
        QCOMPARE(pool.blocks_shared(), 1);
        for (int l = 0; l < c.num_hidden_layers; ++l) {
            pool.row(b, l, 18)[0] = -1.0f;
            QCOMPARE(pool.row(b, l, 17)[0], static_cast<float>(100 * l + 17));
            QCOMPARE(pool.row(a, l, 18)[0], static_cast<float>(100 * l + 18));
        }
        // The attention view reads the same rows the pool wrote.
        const LatentCacheView v = pool.view(b, 2, 19);
        QCOMPARE(v.row(17)[0], 217.0f);
        QCOMPARE(v.row(18)[0], -1.0f);
        pool.release(a);
        QCOMPARE(pool.blocks_used(), 2);
        pool.release(b);
        QCOMPARE(pool.blocks_used(), 0);
        QCOMPARE(pool.blocks_free(), 3);
        // A limit is a refusal that changes nothing.
        LatentPool small(c, 1);
        BlockTable t;
        QVERIFY(!small.prepare_write(t, 0, 17));
        QCOMPARE(t.blocks(), 0);
        QVERIFY(small.prepare_write(t, 0, 16));
    }

    // Out-of-vocabulary ids are refused with a message naming the id and the
    // vocabulary, from every entry point, before anything is fed.
    void out_of_vocabulary_ids_refused()
    {
        const int vocab = m_demo->config().vocab_size;
        const std::vector<int> bad = {1, vocab};
        const auto check = [&](const std::function<void()>& call, const char* what, int id = -2) {
            if (id == -2) id = vocab;
            try {
                call();
                QFAIL(qPrintable(QString("%1 accepted id %2").arg(what).arg(id)));
            } catch (const Error& e) {
                const std::string m = e.what();
                QVERIFY2(m.find("token id " + std::to_string(id) + " ") != std::string::npos &&
                             m.find("vocab_size " + std::to_string(vocab)) != std::string::npos,
                         m.c_str());
            }
        };
        Session session(m_demo);
        check([&] { session.step(vocab); }, "Session::step");
        check([&] { session.step(-1); }, "Session::step(-1)", -1);
        check([&] { session.prefill(bad); }, "Session::prefill");
        check([&] { session.generate(bad, SamplingParams::greedy()); }, "Session::generate");
        QCOMPARE(session.position(), 0);
        Scheduler s(m_demo);
        GenerationRequest r;
        r.prompt = bad;
        check([&] { s.submit(r); }, "Scheduler::submit");
        const SequenceId id = s.open();
        check([&] { s.feed(id, bad); }, "Scheduler::feed");
        check([&] { s.generate(id, r); }, "Scheduler::generate");
        QCOMPARE(s.tokens(id).size(), std::size_t(0));
        QCOMPARE(s.running(), 0);
    }

    // A chat's next turn: keep_prefix keeps the cached conversation and the
    // continuation gives the logits of reading the whole chat again.
    void keep_prefix_continues_a_chat()
    {
        const int vocab = m_demo->config().vocab_size;
        std::mt19937 rng(8);
        const std::vector<int> turn1 = random_prompt(rng, 30, vocab);
        std::vector<int> turn2 = turn1;
        const auto more = random_prompt(rng, 9, vocab);
        turn2.insert(turn2.end(), more.begin(), more.end());

        Session chat(m_demo);
        chat.prefill(turn1);
        QCOMPARE(chat.keep_prefix(turn2), 30);
        const auto l = chat.prefill(std::span<const int>(turn2).subspan(30));
        Session fresh(m_demo);
        const auto want = fresh.prefill(turn2);
        QVERIFY(max_abs_diff({l.begin(), l.end()}, {want.begin(), want.end()}).max_abs <= 2e-5);
        // A different history is dropped back to where they part.
        std::vector<int> other = turn2;
        other[20] = (other[20] + 1) % vocab;
        QCOMPARE(chat.keep_prefix(other), 20);
        QCOMPARE(chat.position(), 20);
        QVERIFY(chat.logits().empty());
        // The same tokens again: all but the last kept, for its logits.
        chat.prefill(std::span<const int>(other).subspan(20));
        QCOMPARE(chat.keep_prefix(other), static_cast<int>(other.size()) - 1);
    }
};

QTEST_GUILESS_MAIN(TestScheduler)
#include "test_scheduler.moc"
