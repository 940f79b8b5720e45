// Batched prefill (Session::prefill, runtime/prefill.cpp) against feeding the
// same tokens one step at a time: same logits up to f32 summation order, same
// routing and cache statistics in every event, and the same state afterwards
// (the next step's logits agree). Covers several batches (more tokens than
// kPrefillBatch), a second prefill continuing the first, query compression
// (v2), F32 weights, and int8 weights; and generate(), which prefills in
// batches too, keeping its per-token stop and cancel contract.
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <vector>

#include "moelens/demo.h"
#include "moelens/error.h"
#include "moelens/model.h"
#include "moelens/sampling.h"
#include "moelens/session.h"

using namespace moelens;
namespace fs = std::filesystem;

namespace {

struct Run {
    std::vector<float> last_logits;
    std::vector<TokenEvent> events;
    std::vector<float> next_logits;  // after one more step
};

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b)
{
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
    return m;
}

double max_abs(const std::vector<float>& a)
{
    double m = 0.0;
    for (float v : a) m = std::max(m, std::fabs(double(v)));
    return m;
}

}  // namespace

class TestBatchedPrefill : public QObject {
    Q_OBJECT

private slots:
    void matchesStepByStep_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("split");  // first prefill call takes this many, the second the rest
        QTest::addColumn<bool>("int8");
        QTest::newRow("lite, one batch") << "lite" << 127 << 127 << false;
        QTest::newRow("lite, two calls") << "lite" << 100 << 37 << false;
        QTest::newRow("v2 (q_lora, group-limited)") << "v2" << 63 << 20 << false;
        QTest::newRow("v2-f32") << "v2-f32" << 90 << 90 << false;
        QTest::newRow("lite int8") << "lite" << 120 << 120 << true;
        QTest::newRow("demo, 300 tokens") << "demo" << 300 << 300 << false;
    }

    void matchesStepByStep()
    {
        QFETCH(QString, variant);
        QFETCH(int, tokens);
        QFETCH(int, split);
        QFETCH(bool, int8);
        QTemporaryDir tmp;
        fs::path dir;
        if (variant == "demo") {
            dir = fs::path(tmp.path().toStdString()) / "demo";
            write_demo_model(dir, DemoModelSpec{5, fs::path(MOELENS_RESOURCES_DIR) / "tokenizer"});
        } else {
            dir = fs::path(MOELENS_FIXTURES_DIR) / "golden" / variant.toStdString();
        }
        LoadOptions lo;
        lo.threads = 2;
        if (int8) lo.weights = WeightsFormat::int8;
        const auto model = load_model(dir, lo);
        const int vocab = model->config().vocab_size;
        std::vector<int> prompt;
        for (int i = 0; i < tokens; ++i) prompt.push_back((i * 7919 + 11) % vocab);

        const auto collect = [](std::vector<TokenEvent>& into) {
            return [&into](const TokenEvent& e) {
                into.push_back(e);
                return true;
            };
        };
        Run batched, stepped;
        {
            Session s(model);
            const std::span<const int> all(prompt);
            s.prefill(all.first(split), collect(batched.events));
            const auto l = s.prefill(all.subspan(split), collect(batched.events));
            batched.last_logits.assign(l.begin(), l.end());
            QCOMPARE(s.position(), tokens);
            const auto n = s.step(3);
            batched.next_logits.assign(n.begin(), n.end());
        }
        {
            Session s(model);
            for (int t : prompt) s.step(t, collect(stepped.events), true);
            stepped.last_logits.assign(s.logits().begin(), s.logits().end());
            const auto n = s.step(3);
            stepped.next_logits.assign(n.begin(), n.end());
        }
        // f32 sums in another order: relative to the logits' scale, far below the
        // golden tolerance (1e-3 absolute on logits of ~10).
        const double scale = std::max(1.0, max_abs(stepped.last_logits));
        const double d_last = max_abs_diff(batched.last_logits, stepped.last_logits);
        const double d_next = max_abs_diff(batched.next_logits, stepped.next_logits);
        qInfo("%s: last logits max |diff| %.3g, next step %.3g (logit scale %.3g)", qPrintable(variant), d_last, d_next,
              scale);
        QVERIFY2(d_last <= 2e-5 * scale, qPrintable(QString::number(d_last)));
        QVERIFY2(d_next <= 2e-5 * scale, qPrintable(QString::number(d_next)));

        QCOMPARE(batched.events.size(), stepped.events.size());
        // Gate weights, relative to max(1, |weight|): the router's softmax and the
        // routed scaling factor (16 in v2) turn f32 order differences of ~1e-6 in
        // its inputs into ~1e-5 here; a wrong expert or weight would be far off.
        double worst_weight = 0.0;
        for (std::size_t i = 0; i < stepped.events.size(); ++i) {
            const TokenEvent& a = batched.events[i];
            const TokenEvent& b = stepped.events[i];
            QCOMPARE(a.token, b.token);
            QCOMPARE(a.position, b.position);
            QVERIFY(a.is_prompt && b.is_prompt);
            QCOMPARE(a.cache.tokens_held, b.cache.tokens_held);
            QCOMPARE(a.cache.latent_bytes_used, b.cache.latent_bytes_used);
            QCOMPARE(a.routing.size(), b.routing.size());
            for (std::size_t r = 0; r < a.routing.size(); ++r) {
                QCOMPARE(a.routing[r].layer, b.routing[r].layer);
                QCOMPARE(a.routing[r].experts, b.routing[r].experts);
                QCOMPARE(a.routing[r].groups, b.routing[r].groups);
                for (std::size_t j = 0; j < a.routing[r].weights.size(); ++j) {
                    const float wa = a.routing[r].weights[j], wb = b.routing[r].weights[j];
                    worst_weight = std::max(worst_weight, double(std::fabs(wa - wb)) / std::max(1.0f, std::fabs(wb)));
                }
            }
        }
        // int8 quantises each activation vector per 64 values: an order difference of
        // ~1e-7 can move one value across a rounding boundary, one step of 1/127 of
        // its block's largest value, which reaches the gate weights as ~1e-3 (seen
        // with the AVX2 kernels). Still far below a wrong weight.
        const double weight_bound = int8 ? 5e-3 : 1e-4;
        qInfo("gate weights: worst difference %.3g (bound %.3g)", worst_weight, weight_bound);
        QVERIFY2(worst_weight <= weight_bound, qPrintable(QString::number(worst_weight)));
    }

    void generateKeepsThePerTokenContract()
    {
        const auto model = load_model(fs::path(MOELENS_FIXTURES_DIR) / "golden" / "lite", LoadOptions{2, {}});
        std::vector<int> prompt;
        for (int i = 0; i < 50; ++i) prompt.push_back((i * 31 + 7) % 768);
        SamplingParams greedy = SamplingParams::greedy();
        greedy.max_new_tokens = 6;
        greedy.stop_at_eos = false;

        // Same greedy continuation as feeding the prompt token by token.
        Session a(model), b(model);
        const GenerationResult ra = a.generate(prompt, greedy);
        for (int t : prompt) b.step(t);
        std::vector<int> want;
        for (int i = 0; i < greedy.max_new_tokens; ++i) {
            want.push_back(argmax(b.logits()));
            if (i + 1 < greedy.max_new_tokens) b.step(want.back());
        }
        QCOMPARE(ra.tokens, want);

        // The callback stopping at the 5th prompt event ends the sequence there.
        Session c(model);
        int events = 0;
        const GenerationResult rc = c.generate(prompt, greedy, [&](const TokenEvent&) { return ++events < 5; });
        QCOMPARE(rc.reason, StopReason::callback);
        QCOMPARE(events, 5);
        QCOMPARE(c.position(), 5);
        QVERIFY(c.logits().empty());
        // ... and continues from there like a sequence fed those 5 tokens.
        Session d(model);
        for (int i = 0; i < 5; ++i) d.step(prompt[i]);
        const auto lc = c.step(9);
        const auto ld = d.step(9);
        QVERIFY(max_abs_diff(std::vector<float>(lc.begin(), lc.end()), std::vector<float>(ld.begin(), ld.end())) < 1e-4);

        // A cancel raised during the 7th event: the 8th token is not fed.
        Session e(model);
        std::atomic<bool> cancel{false};
        int seen = 0;
        const GenerationResult re = e.generate(prompt, greedy, [&](const TokenEvent&) {
            if (++seen == 7) cancel = true;
            return true;
        }, &cancel);
        QCOMPARE(re.reason, StopReason::cancelled);
        QCOMPARE(seen, 7);
        QCOMPARE(e.position(), 7);
    }

    void refusesBadInput()
    {
        const auto model = load_model(fs::path(MOELENS_FIXTURES_DIR) / "golden" / "lite", LoadOptions{1, {}});
        Session s(model);
        const std::vector<int> bad{1, 2, 100000};
        QVERIFY_THROWS_EXCEPTION(moelens::Error, s.prefill(bad));
        QCOMPARE(s.position(), 0);
        // Past the context limit: what fits is fed, then the error.
        SessionOptions o;
        o.max_tokens = 10;
        Session small(model, o);
        const std::vector<int> twelve(12, 5);
        QVERIFY_THROWS_EXCEPTION(moelens::Error, small.prefill(twelve));
        QCOMPARE(small.position(), 10);
    }
};

QTEST_GUILESS_MAIN(TestBatchedPrefill)
#include "test_batched_prefill.moc"
