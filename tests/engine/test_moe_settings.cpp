// The router's what-if settings (moelens/moe_settings.h) against the reference.
//
// The goldens hold the routing the official reference computed with the model's
// own top-k (k0). What it would compute with another K follows from its MoEGate
// (DeepSeek-V2 section 2.2; tests/fixtures/golden/README.md): the scores
// s = softmax(W_gate h) do not depend on K; the group mask (group-limited routing)
// keeps the topk_group groups by their best score, also independent of K; then
// torch.topk(masked s, K). So at the first MoE layer, whose input h no routing
// decision has touched yet (only dense layers before it), the top-K for K < k0 is
// the K best of the golden's k0 experts, for K > k0 it contains all k0 of them,
// and (norm_topk_prob is false in every golden) each chosen expert keeps the
// golden's weight s_e x routed_scaling_factor. Masking an expert only removes it:
// the golden's other experts stay chosen.
#include <QTest>

#include <algorithm>
#include <map>
#include <set>

#include "moelens/error.h"
#include "moelens/moe_settings.h"
#include "moelens/safetensors.h"
#include "moelens/scheduler.h"
#include "moelens/session.h"
#include "golden_compare.h"

using namespace moelens;
using namespace moelens::testing;

namespace {

const std::filesystem::path kGolden = std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden";

// Every token's routing: layer -> [token] -> records as the engine reported them.
using Routing = std::map<int, std::vector<RoutingRecord>>;

struct Run {
    Routing routing;
    std::vector<int> generated;
    int first_moe_layer = -1;
};

Run run(const std::shared_ptr<const Model>& model, const std::vector<int>& prompt, const MoeSettings& moe, int new_tokens)
{
    Run out;
    SessionOptions o;
    o.moe = moe;
    Session s(model, o);
    SamplingParams p = SamplingParams::greedy();
    p.max_new_tokens = new_tokens;
    p.stop_at_eos = false;
    const GenerationResult r = s.generate(prompt, p, [&](const TokenEvent& e) {
        for (const RoutingRecord& rec : e.routing) out.routing[rec.layer].push_back(rec);
        return true;
    });
    out.generated = r.tokens;
    out.first_moe_layer = out.routing.empty() ? -1 : out.routing.begin()->first;
    return out;
}

// The golden's experts of token t at `layer`, best weight first (ties: lower id,
// the reference's topk order is not kept in the file, which sorts by id).
std::vector<std::pair<int, float>> golden_ranked(const SafetensorsFile& g, int layer, int k, std::size_t t)
{
    const std::vector<int> idx = as_int(g.to_i64("topk_idx." + std::to_string(layer)));
    const std::vector<float> w = g.to_f32("topk_weight." + std::to_string(layer));
    std::vector<std::pair<int, float>> v;
    for (int j = 0; j < k; ++j) v.push_back({idx[t * k + j], w[t * k + j]});
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return v;
}

float weight_of(const RoutingRecord& r, int expert)
{
    for (std::size_t j = 0; j < r.experts.size(); ++j)
        if (r.experts[j] == expert) return r.weights[j];
    return -1.0f;
}

}  // namespace

class TestMoeSettings : public QObject {
    Q_OBJECT

private slots:
    void experts_per_token_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::addColumn<int>("k");
        QTest::newRow("lite K=1") << "lite" << 1;
        QTest::newRow("lite K=3") << "lite" << 3;
        QTest::newRow("lite K=8 (all)") << "lite" << 8;
        QTest::newRow("v2 K=1") << "v2" << 1;
        QTest::newRow("v2 K=2") << "v2" << 2;
        QTest::newRow("v2 K=5") << "v2" << 5;
    }
    // Top-K at the first MoE layer from the reference's top-k0 (header comment).
    void experts_per_token()
    {
        QFETCH(QString, variant);
        QFETCH(int, k);
        const auto dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const ModelConfig& c = model->config();
        const int k0 = c.num_experts_per_tok;
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        MoeSettings moe;
        moe.experts_per_token = k;
        const Run r = run(model, prompt, moe, 4);
        const int layer = c.first_k_dense_replace;
        QCOMPARE(r.first_moe_layer, layer);
        const double wtol = 1e-4 * std::max(1.0, c.routed_scaling_factor);
        const auto& rows = r.routing.at(layer);
        QCOMPARE(rows.size(), prompt.size() + 4);  // the prompt and the generated tokens fed back
        for (std::size_t t = 0; t < prompt.size(); ++t) {
            const RoutingRecord& got = rows[t];
            QCOMPARE(static_cast<int>(got.experts.size()), k);
            const auto want = golden_ranked(golden, layer, k0, t);
            for (int j = 0; j < std::min(k, k0); ++j) {
                // K < k0: exactly the K best (a tie at the cut may go either way only
                // if two weights are equal, which these goldens never have).
                const float w = weight_of(got, want[static_cast<std::size_t>(j)].first);
                QVERIFY2(w >= 0.0f, qPrintable(QString("token %1: expert %2 of the reference's top-%3 not in the top-%4")
                                                   .arg(t).arg(want[static_cast<std::size_t>(j)].first).arg(k0).arg(k)));
                QVERIFY(std::abs(w - want[static_cast<std::size_t>(j)].second) <= wtol);
            }
        }
        // Every routed token, every layer: K distinct experts.
        for (const auto& [l, recs] : r.routing)
            for (const RoutingRecord& rec : recs) {
                QCOMPARE(static_cast<int>(std::set<int>(rec.experts.begin(), rec.experts.end()).size()), k);
            }
    }

    void device_limit_data()
    {
        QTest::addColumn<int>("m");
        for (int m = 1; m <= 4; ++m) QTest::newRow(qPrintable(QString("M=%1").arg(m))) << m;
    }
    // v2 routes group-limited (4 groups, keep 2): with M groups no token of any
    // layer draws from more, and the best expert (always in the best group) stays.
    void device_limit()
    {
        QFETCH(int, m);
        const auto dir = kGolden / "v2";
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const ModelConfig& c = model->config();
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        MoeSettings moe;
        moe.device_limit = m;
        const Run r = run(model, prompt, moe, 6);
        const int per_group = c.n_routed_experts / c.n_group;
        int checked = 0;
        for (const auto& [l, recs] : r.routing)
            for (const RoutingRecord& rec : recs) {
                std::set<int> groups;
                for (int e : rec.experts) groups.insert(e / per_group);
                QVERIFY2(static_cast<int>(groups.size()) <= m,
                         qPrintable(QString("layer %1: a token drew from %2 groups, limit %3").arg(l).arg(groups.size()).arg(m)));
                for (std::size_t j = 0; j < rec.experts.size(); ++j) QCOMPARE(rec.groups[j], rec.experts[j] / per_group);
                ++checked;
            }
        QCOMPARE(checked, static_cast<int>((prompt.size() + 6) * r.routing.size()));
        const int layer = c.first_k_dense_replace;
        for (std::size_t t = 0; t < prompt.size(); ++t) {
            const auto best = golden_ranked(golden, layer, c.num_experts_per_tok, t).front();
            QVERIFY(weight_of(r.routing.at(layer)[t], best.first) >= 0.0f);
        }
        if (m == c.topk_group) {
            const std::vector<int> want = as_int(golden.to_i64("greedy_tokens"));
            QCOMPARE(r.generated, std::vector<int>(want.begin(), want.begin() + 6));
        }
    }

    // Switched-off experts are never chosen, and the reference's other choices stay.
    void disabled_experts()
    {
        for (const char* variant : {"lite", "v2"}) {
            const auto dir = kGolden / variant;
            const SafetensorsFile golden(dir / "golden.safetensors");
            auto model = load_model(dir, LoadOptions{2, {}});
            const ModelConfig& c = model->config();
            const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
            const int first = c.first_k_dense_replace, last = c.num_hidden_layers - 1;
            MoeSettings moe;
            moe.disabled = {{first, 2}, {first, 5}, {last, 0}};
            const Run r = run(model, prompt, moe, 6);
            const std::set<std::pair<int, int>> off = {{first, 2}, {first, 5}, {last, 0}};
            for (const auto& [l, recs] : r.routing)
                for (const RoutingRecord& rec : recs) {
                    QCOMPARE(static_cast<int>(rec.experts.size()), c.num_experts_per_tok);
                    for (int e : rec.experts) QVERIFY2(!off.count({l, e}), qPrintable(QString("%1: layer %2 chose disabled expert %3").arg(variant).arg(l).arg(e)));
                }
            // Greedy routing (lite): masking only removes, so the golden's enabled
            // experts are still chosen. (Group-limited routing may keep other
            // groups once a group's best is masked; moe_route's twin test covers it.)
            if (c.topk_method != TopkMethod::greedy) continue;
            for (std::size_t t = 0; t < prompt.size(); ++t)
                for (const auto& [e, w] : golden_ranked(golden, first, c.num_experts_per_tok, t))
                    if (!off.count({first, e}))
                        QVERIFY2(weight_of(r.routing.at(first)[t], e) >= 0.0f, qPrintable(QString("token %1 lost expert %2").arg(t).arg(e)));
        }
    }

    // The model's own values, spelled out, are the default: today's tokens, the golden's.
    void explicit_defaults_are_the_model()
    {
        for (const char* variant : {"lite", "v2"}) {
            const auto dir = kGolden / variant;
            const SafetensorsFile golden(dir / "golden.safetensors");
            auto model = load_model(dir, LoadOptions{2, {}});
            const ModelConfig& c = model->config();
            MoeSettings moe;
            moe.experts_per_token = c.num_experts_per_tok;
            if (c.topk_method == TopkMethod::group_limited_greedy) moe.device_limit = c.topk_group;
            QVERIFY(moe.is_default(c));
            QVERIFY(MoeSettings{}.is_default(c));
            const std::vector<int> want = as_int(golden.to_i64("greedy_tokens"));
            const Run r = run(model, as_int(golden.to_i64("tokens")), moe, static_cast<int>(want.size()));
            QCOMPARE(r.generated, want);
            const int layer = c.first_k_dense_replace;
            const std::vector<int> idx = as_int(golden.to_i64("topk_idx." + std::to_string(layer)));
            for (std::size_t t = 0; t < 8; ++t) {
                std::vector<int> got = r.routing.at(layer)[t].experts;
                std::sort(got.begin(), got.end());
                QCOMPARE(got, std::vector<int>(idx.begin() + t * c.num_experts_per_tok, idx.begin() + (t + 1) * c.num_experts_per_tok));
            }
        }
    }

    void bad_settings_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::addColumn<int>("k");
        QTest::addColumn<int>("m");
        QTest::addColumn<QString>("disabled");
        QTest::addColumn<QString>("message");
        QTest::newRow("K negative") << "lite" << -1 << 0 << "" << "experts per token -1 is outside 1..8";
        QTest::newRow("K above E") << "lite" << 9 << 0 << "" << "experts per token 9 is outside 1..8";
        QTest::newRow("M on greedy") << "lite" << 0 << 1 << "" << "needs group-limited routing";
        QTest::newRow("M above groups") << "v2" << 0 << 5 << "" << "device limit 5 is outside 1..4";
        QTest::newRow("dense layer") << "lite" << 0 << 0 << "0:1" << "layer 0 is not a MoE layer";
        QTest::newRow("expert out of range") << "lite" << 0 << 0 << "1:8" << "expert ids are 0..7";
        QTest::newRow("listed twice") << "lite" << 0 << 0 << "1:3,1:3" << "listed twice";
        QTest::newRow("too few left") << "lite" << 7 << 0 << "1:0,1:1" << "layer 1 would have 6 experts to choose 7 from";
        // v2: 4 groups of 4; M = 1 and one group with a single enabled expert cannot give 3.
        QTest::newRow("a group too thin") << "v2" << 0 << 1 << "1:0,1:1,1:2" << "least-enabled groups";
    }
    void bad_settings()
    {
        QFETCH(QString, variant);
        QFETCH(int, k);
        QFETCH(int, m);
        QFETCH(QString, disabled);
        QFETCH(QString, message);
        auto model = load_model(kGolden / variant.toStdString(), LoadOptions{1, {}});
        MoeSettings moe{k, m, parse_disabled_experts(disabled.toStdString())};
        try {
            check_moe_settings(model->config(), moe);
            QFAIL("accepted");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find(message.toStdString()) != std::string::npos, e.what());
        }
        // Every way in refuses it the same: a Session, a submitted request.
        SessionOptions o;
        o.moe = moe;
        QVERIFY_THROWS_EXCEPTION(Error, Session(model, o));
        Scheduler s(model);
        GenerationRequest req;
        req.prompt = {0, 5, 6};
        req.moe = moe;
        QVERIFY_THROWS_EXCEPTION(Error, s.submit(req));
        QCOMPARE(s.running(), 0);
    }

    void parse_and_describe()
    {
        QCOMPARE(parse_disabled_experts("3:12,10:0"), (std::vector<DisabledExpert>{{3, 12}, {10, 0}}));
        QVERIFY(parse_disabled_experts("").empty());
        QCOMPARE(format_disabled_experts({{3, 12}, {10, 0}}), std::string("3:12,10:0"));
        for (const char* bad : {"3", "3:", ":4", "a:1", "1:2,", "1:-2", "1:2:3", "1:2 "})
            QVERIFY_THROWS_EXCEPTION(Error, parse_disabled_experts(bad));
        auto model = load_model(kGolden / "v2", LoadOptions{1, {}});
        const ModelConfig& c = model->config();
        QVERIFY(describe_moe_settings(c, {}).empty());
        QCOMPARE(describe_moe_settings(c, MoeSettings{2, 1, {{1, 12}}}),
                 (std::vector<std::string>{"2 of 16 experts", "M = 1", "e12 off in layer 1"}));
        QCOMPARE(describe_moe_settings(c, MoeSettings{0, 0, {{1, 1}, {1, 2}, {2, 1}, {3, 4}}}),
                 (std::vector<std::string>{"4 experts off"}));
        // All routed experts active = every parameter of the checkpoint.
        const ModelInfo& info = model->info();
        QCOMPARE(active_parameters(info, {}), info.active_params_per_token);
        QCOMPARE(active_parameters(info, MoeSettings{c.n_routed_experts, 0, {}}), info.total_params);
        QVERIFY(active_parameters(info, MoeSettings{1, 0, {}}) < info.active_params_per_token);
    }

    // A sequence routed differently computes its own prompt (sharing a prefix
    // computed with other routing would be wrong), and a row's result does not
    // depend on its neighbours: each one's tokens are those of it run alone.
    void batch_mixes_settings()
    {
        const auto dir = kGolden / "v2";
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const std::vector<int> prompt = as_int(golden.to_i64("tokens"));
        const std::vector<MoeSettings> settings = {{}, {1, 0, {}}, {0, 1, {}}, {}, {0, 0, {{2, 3}}}};
        Scheduler s(model);
        std::vector<GenerationResult> results(settings.size());
        for (std::size_t i = 0; i < settings.size(); ++i) {
            GenerationRequest req;
            req.prompt = prompt;
            req.sampling = SamplingParams::greedy();
            req.sampling.max_new_tokens = 6;
            req.sampling.stop_at_eos = false;
            req.moe = settings[i];
            req.on_finish = [&results, i](SequenceId, const GenerationResult& r) { results[i] = r; };
            s.submit(std::move(req));
        }
        s.run();
        QCOMPARE(results[0].reused_tokens + results[3].reused_tokens, static_cast<int>(prompt.size()) - 1);
        for (std::size_t i : {1u, 2u, 4u}) QCOMPARE(results[i].reused_tokens, 0);
        for (std::size_t i = 0; i < settings.size(); ++i)
            QCOMPARE(results[i].tokens, run(model, prompt, settings[i], 6).generated);
        const std::vector<int> want = as_int(golden.to_i64("greedy_tokens"));
        QCOMPARE(results[0].tokens, std::vector<int>(want.begin(), want.begin() + 6));
    }
};

QTEST_GUILESS_MAIN(TestMoeSettings)
#include "test_moe_settings.moc"
