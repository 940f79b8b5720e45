// Expert parallelism over virtual devices (moelens/expert_parallel.h): the same
// outputs as one device, bit for bit; traffic equal to what the routing implies,
// counted here by hand from the token events; the device limit never exceeded.
#include <QTest>


#include "moelens/error.h"
#include "moelens/safetensors.h"
#include "moelens/scheduler.h"
#include "moelens/session.h"
#include "golden_compare.h"
#include "hand_traffic.h"

using namespace moelens;
using namespace moelens::testing;

namespace {

const std::filesystem::path kGolden = std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden";

struct Out {
    std::vector<std::vector<int>> tokens;         // per request
    std::vector<std::vector<RoutingRecord>> routing;  // per request, every computed token x MoE layer
    ExpertTraffic traffic;                        // the scheduler's
    std::vector<ExpertTraffic> seq_traffic;       // per request: its GenerationResult's
};

// The engine's counts against the hand count.
void compare(const ExpertTraffic& t, const HandTraffic& want)
{
    QCOMPARE(t.token_layers, want.token_layers);
    QCOMPARE(t.dispatch_rows, want.dispatch);
    QCOMPARE(t.combine_rows, want.combine);
    QCOMPARE(t.expert_rows, want.products);
    QCOMPARE(t.touched, want.touched);
}

// Greedy, `n` new tokens, never stopping at EOS.
GenerationRequest greedy_request(const std::vector<int>& prompt, int n)
{
    GenerationRequest r;
    r.prompt = prompt;
    r.sampling = SamplingParams::greedy();
    r.sampling.max_new_tokens = n;
    r.sampling.stop_at_eos = false;
    return r;
}

// Three sequences at once (different prompts, so every row is computed),
// greedy, with `devices` virtual devices (0 = none) and the given routing.
Out run(const std::shared_ptr<const Model>& model, const std::vector<int>& prompt, int devices, MoeSettings moe = {})
{
    SchedulerOptions o;
    o.virtual_devices = devices;
    o.share_prefixes = false;
    Scheduler s(model, o);
    Out out;
    out.traffic.devices = devices;  // until the run's traffic is in
    const int n = 3;
    out.tokens.resize(n);
    out.routing.resize(n);
    out.seq_traffic.resize(n);
    for (int i = 0; i < n; ++i) {
        GenerationRequest r = greedy_request(std::vector<int>(prompt.begin(), prompt.end() - i), 6);
        r.moe = moe;
        r.on_event = [&out, i](const TokenEvent& e) {
            for (const RoutingRecord& rec : e.routing) out.routing[i].push_back(rec);
            return true;
        };
        r.on_finish = [&out, i](SequenceId, const GenerationResult& g) {
            out.tokens[i] = g.tokens;
            QCOMPARE(g.traffic.has_value(), out.traffic.devices > 0);
            if (g.traffic) out.seq_traffic[i] = *g.traffic;
        };
        s.submit(std::move(r));
    }
    s.run();
    out.traffic = s.expert_traffic();
    return out;
}

}  // namespace

class TestExpertParallel : public QObject {
    Q_OBJECT

private slots:
    void same_outputs_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::addColumn<int>("devices");
        for (const char* v : {"lite", "v2"})
            for (int d : {1, 2, 4, 8}) QTest::newRow(qPrintable(QString("%1 D=%2").arg(v).arg(d))) << QString(v) << d;
    }
    // Tokens and every routing weight bit-identical to the engine without devices.
    void same_outputs()
    {
        QFETCH(QString, variant);
        QFETCH(int, devices);
        const auto dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        const Out plain = run(model, prompt, 0);
        const Out split = run(model, prompt, devices);
        QCOMPARE(split.tokens, plain.tokens);
        QCOMPARE(split.routing.size(), plain.routing.size());
        for (std::size_t i = 0; i < plain.routing.size(); ++i) {
            QCOMPARE(split.routing[i].size(), plain.routing[i].size());
            for (std::size_t j = 0; j < plain.routing[i].size(); ++j) {
                QCOMPARE(split.routing[i][j].experts, plain.routing[i][j].experts);
                QCOMPARE(split.routing[i][j].weights, plain.routing[i][j].weights);  // exact: same computation
            }
        }
        const std::vector<int> want = as_int(golden.to_i64("greedy_tokens"));
        QCOMPARE(split.tokens[0], std::vector<int>(want.begin(), want.begin() + 6));
        QCOMPARE(plain.traffic.token_layers, std::uint64_t{0});  // nothing counted without devices
        QVERIFY(split.traffic.token_layers > 0);
    }

    void traffic_by_hand_data() { same_outputs_data(); }
    // Dispatch: a token-layer's row goes once to each device holding one of its
    // experts; combine: each expert's output comes back to the row's home; homes
    // are the sequences' devices in turn.
    void traffic_by_hand()
    {
        QFETCH(QString, variant);
        QFETCH(int, devices);
        const auto dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const Out out = run(model, as_int(golden.to_i64("tokens")), devices);
        const ExpertPlacement p = place_experts(model->info(), devices);
        const int D = devices;
        // The scheduler's sum and every sequence's own (homes: the devices in turn).
        HandTraffic all(D);
        for (std::size_t i = 0; i < out.routing.size(); ++i) {
            const int home = static_cast<int>(i) % D;
            all.add_all(out.routing[i], p.device_of, home);
            HandTraffic own(D);
            own.add_all(out.routing[i], p.device_of, home);
            QCOMPARE(out.seq_traffic[i].home, home);
            compare(out.seq_traffic[i], own);
        }
        compare(out.traffic, all);
        const std::vector<std::uint64_t>& dispatch = all.dispatch;
        const std::vector<std::uint64_t>& combine = all.combine;
        const ExpertTraffic& t = out.traffic;
        QCOMPARE(t.devices, D);
        std::uint64_t remote_d = 0, remote_c = 0;
        for (int a = 0; a < D; ++a)
            for (int b = 0; b < D; ++b)
                if (a != b) remote_d += dispatch[a * D + b], remote_c += combine[a * D + b];
        const std::uint64_t row_bytes = static_cast<std::uint64_t>(model->config().hidden_size) * 4;
        QCOMPARE(t.dispatch_bytes(), remote_d * row_bytes);
        QCOMPARE(t.combine_bytes(), remote_c * row_bytes);
        if (D == 1) QCOMPARE(t.dispatch_bytes() + t.combine_bytes(), std::uint64_t{0});
    }

    // v2: 4 groups, 2 kept. With whole groups per device (D = 1, 2, 4) no token
    // reaches more than M devices, for the model's M and for a what-if M = 1.
    void device_limit_holds()
    {
        auto model = load_model(kGolden / "v2", LoadOptions{2, {}});
        const SafetensorsFile golden(kGolden / "v2" / "golden.safetensors");
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        for (int D : {1, 2, 4}) {
            QVERIFY(place_experts(model->info(), D).device_limited);
            for (int m : {0, 1}) {
                MoeSettings moe;
                moe.device_limit = m;
                const ExpertTraffic t = run(model, prompt, D, moe).traffic;
                const int limit = m ? m : model->config().topk_group;
                QCOMPARE(t.limit_exceeded, std::uint64_t{0});
                for (int n = limit + 1; n <= D; ++n) QCOMPARE(t.touched[n], std::uint64_t{0});
                QVERIFY(t.token_layers > 0);
            }
        }
        // 8 devices split the groups: the limit is no bound on devices then.
        QVERIFY(!place_experts(model->info(), 8).device_limited);
    }

    // A device lost mid-run: the generations of the step that needed it end with
    // an error naming it, their blocks are released, and the scheduler goes on:
    // a generation routed around the lost device (its experts disabled) runs and
    // gives what the engine without devices gives with the same settings.
    void device_lost()
    {
        auto model = load_model(kGolden / "v2", LoadOptions{2, {}});
        const SafetensorsFile golden(kGolden / "v2" / "golden.safetensors");
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        SchedulerOptions o;
        o.virtual_devices = 4;
        o.share_prefixes = false;
        Scheduler s(model, o);
        std::vector<GenerationResult> results(2);
        for (int i = 0; i < 2; ++i) {
            GenerationRequest r = greedy_request(std::vector<int>(prompt.begin(), prompt.end() - i), 8);
            r.on_finish = [&results, i](SequenceId, const GenerationResult& g) { results[i] = g; };
            s.submit(std::move(r));
        }
        QVERIFY(s.step());  // both prompts read, a first token each
        s.lose_device(1);
        s.run();
        for (const GenerationResult& r : results) {
            QCOMPARE(r.reason, StopReason::error);
            QCOMPARE(r.failed_device, 1);
            QVERIFY2(r.error.find("virtual device 1 was lost") != std::string::npos, r.error.c_str());
            QCOMPARE(r.tokens.size(), std::size_t{1});
        }
        QCOMPARE(s.pool_stats().blocks_used, 0);
        QCOMPARE(s.running(), 0);

        MoeSettings around;
        const ExpertPlacement& p = *s.placement();
        for (int layer : model->info().moe_layers)
            for (int e = 0; e < p.n_experts; ++e)
                if (p.device(e) == 1) around.disabled.push_back({layer, e});
        const auto greedy = [&](Scheduler& sched) {
            GenerationResult out;
            GenerationRequest r = greedy_request(prompt, 8);
            r.moe = around;
            r.on_finish = [&out](SequenceId, const GenerationResult& g) { out = g; };
            sched.submit(std::move(r));
            sched.run();
            return out;
        };
        const GenerationResult routed = greedy(s);
        QVERIFY2(routed.reason == StopReason::max_new_tokens, routed.error.c_str());
        QCOMPARE(routed.traffic->expert_rows[1], std::uint64_t{0});
        Scheduler plain(model);
        QCOMPARE(routed.tokens, greedy(plain).tokens);
        QVERIFY_THROWS_EXCEPTION(Error, s.lose_device(4));
        QVERIFY_THROWS_EXCEPTION(Error, plain.lose_device(0));
    }

    // Memory per virtual device: weights that cannot fit are refused at once; a
    // step whose expert rows do not fit (a long prompt chunk) ends its generation
    // as out of memory, freeing its blocks; one-row steps still fit, and give the
    // tokens of the engine without devices. A Session throws DeviceFault for it.
    void device_out_of_memory()
    {
        auto model = load_model(kGolden / "v2", LoadOptions{2, {}});
        const SafetensorsFile golden(kGolden / "v2" / "golden.safetensors");
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        QVERIFY(prompt.size() >= 8);
        const ModelConfig& c = model->config();
        const ExpertPlacement p = place_experts(model->info(), 2);
        const std::uint64_t weights = std::max(p.weight_bytes[0], p.weight_bytes[1]);
        QVERIFY(weights > 0);
        const std::uint64_t slot = 4ull * (2 * c.hidden_size + 2 * c.moe_intermediate_size);
        SchedulerOptions o;
        o.virtual_devices = 2;
        o.virtual_device_memory = weights;
        QVERIFY_THROWS_EXCEPTION(Error, Scheduler(model, o));
        // Room for one row's k expert products on a device, not for eight rows'.
        o.virtual_device_memory = weights + slot * static_cast<std::uint64_t>(c.num_experts_per_tok);
        Scheduler s(model, o);
        GenerationResult failed;
        GenerationRequest r = greedy_request(prompt, 4);
        r.on_finish = [&failed](SequenceId, const GenerationResult& g) { failed = g; };
        s.submit(r);
        s.run();
        QCOMPARE(failed.reason, StopReason::error);
        QVERIFY(failed.failed_device == 0 || failed.failed_device == 1);
        QVERIFY2(failed.error.find("is out of memory") != std::string::npos, failed.error.c_str());
        QVERIFY(failed.tokens.empty());
        QCOMPARE(s.pool_stats().blocks_used, 0);

        // One token per step: fits.
        SessionOptions so;
        so.virtual_devices = 2;
        so.virtual_device_memory = o.virtual_device_memory;
        Session small(model, so);
        QVERIFY_THROWS_EXCEPTION(DeviceFault, small.generate(prompt, r.sampling));
        QCOMPARE(small.position(), 0);  // the failed chunk's rows dropped
        for (int t : std::vector<int>(prompt.begin(), prompt.end() - 1)) small.step(t);
        const GenerationResult ok = small.generate(std::vector<int>{prompt.back()}, r.sampling);
        Session plain(model);
        QCOMPARE(ok.tokens, plain.generate(prompt, r.sampling).tokens);
        QVERIFY(small.expert_traffic().peak_activation_bytes[0] <= slot * c.num_experts_per_tok);
    }

    void placement()
    {
        auto lite = load_model(kGolden / "lite", LoadOptions{1, {}});
        const ExpertPlacement p = place_experts(lite->info(), 3);  // greedy: contiguous blocks
        QCOMPARE(p.device_of, (std::vector<int>{0, 0, 0, 1, 1, 1, 2, 2}));
        QVERIFY(!p.device_limited);
        std::uint64_t sum = 0;
        for (std::uint64_t x : p.params) sum += x;
        QCOMPARE(sum, lite->info().total_params + 2 * p.replicated_params);  // replicated on each of 3
        auto v2 = load_model(kGolden / "v2", LoadOptions{1, {}});
        const ExpertPlacement g = place_experts(v2->info(), 2);  // group g on device g mod 2
        for (int e = 0; e < 16; ++e) QCOMPARE(g.device_of[e], (e / 4) % 2);
        QVERIFY_THROWS_EXCEPTION(Error, place_experts(v2->info(), 0));
        QVERIFY_THROWS_EXCEPTION(Error, place_experts(v2->info(), 17));
        SchedulerOptions o;
        o.virtual_devices = -1;
        QVERIFY_THROWS_EXCEPTION(Error, Scheduler(v2, o));
    }
};

QTEST_GUILESS_MAIN(TestExpertParallel)
#include "test_expert_parallel.moc"
