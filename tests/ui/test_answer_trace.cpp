// The UI's trace model: engine rows -> store trace -> blob -> replayed rows keep
// every expert id, layer, token and text (weights to binary16 precision), the
// replayed cache series follows the per-token sizes, and the expert-load figures
// (counts, max/mean, CV) are what the definitions give on a hand-made trace.
// Whole-number chart axes tick at whole numbers.
#include <QValueAxis>
#include <QtTest>

#include "moelens_storage/trace_codec.h"
#include "trace/answer_trace.h"
#include "viz/expert_load.h"
#include "viz/viz_common.h"

namespace {

TraceShape shape()
{
    TraceShape s;
    s.nRoutedExperts = 4;
    s.nSharedExperts = 1;
    s.topK = 2;
    s.nGroup = 2;
    s.topkGroup = 1;
    s.moeLayers = {1, 2};
    s.latentBytesPerToken = 100;
    s.mhaBytesPerToken = 400;
    s.gqa8BytesPerToken = 200;
    return s;
}

TokenRow row(int token, bool prompt, QString text, std::vector<std::vector<int>> experts)
{
    TokenRow r;
    r.token = token;
    r.isPrompt = prompt;
    r.text = std::move(text);
    for (std::size_t l = 0; l < experts.size(); ++l) {
        moelens::RoutingRecord rec;
        rec.layer = int(l) + 1;
        rec.experts = experts[l];
        rec.weights = {0.75f, 0.3333f};
        for (int e : experts[l]) rec.groups.push_back(e / 2);
        r.routing.push_back(rec);
    }
    return r;
}

}  // namespace

class TestAnswerTrace : public QObject {
    Q_OBJECT

private slots:
    void roundTripsThroughTheStore()
    {
        AnswerTrace live(shape());
        TokenRow earlier = row(5, true, {}, {{0, 1}, {2, 3}});  // an earlier turn: not kept
        TokenRow user = row(6, true, "User", {{1, 2}, {3, 0}});
        user.inLatestMessage = true;
        TokenRow colon = row(7, true, ":", {{2, 3}, {1, 0}});
        colon.inLatestMessage = true;
        for (const TokenRow& r : {earlier, user, colon}) live.append(r);
        live.append(row(10, false, "Hé", {{3, 2}, {0, 1}}));
        live.append(row(11, false, "llo", {{1, 0}, {1, 3}}));
        QCOMPARE(live.promptTokens(), 3);
        QCOMPARE(live.messageTokens().size(), std::size_t(2));
        QCOMPARE(live.tokens().size(), std::size_t(2));
        QCOMPARE(live.cacheSeries().size(), std::size_t(5));
        QCOMPARE(live.topExpert(0, 1), 3);
        QCOMPARE(live.topExpert(1, 2), 1);
        QCOMPARE(live.topExpert(1, 5), -1);

        const moelens::storage::RoutingTrace stored =
            moelens::storage::decode_trace(moelens::storage::encode_trace(live.toStorage()));
        QCOMPARE(stored.n_prompt_tokens, 2u);
        QCOMPARE(stored.n_tokens(), std::size_t(4));
        const AnswerTrace replay = AnswerTrace::fromStorage(stored, shape(), 3);
        const auto same = [](const TokenRows& want, const TokenRows& got) {
            QCOMPARE(got.size(), want.size());
            for (std::size_t t = 0; t < want.size(); ++t) {
                const TokenRow& a = want[t];
                const TokenRow& b = got[t];
                QCOMPARE(b.token, a.token);
                QCOMPARE(b.text, a.text);
                QCOMPARE(b.isPrompt, a.isPrompt);
                QCOMPARE(b.routing.size(), a.routing.size());
                for (std::size_t l = 0; l < a.routing.size(); ++l) {
                    QCOMPARE(b.routing[l].layer, a.routing[l].layer);
                    QCOMPARE(b.routing[l].experts, a.routing[l].experts);
                    QCOMPARE(b.routing[l].groups, a.routing[l].groups);
                    for (std::size_t j = 0; j < a.routing[l].weights.size(); ++j)
                        QVERIFY(std::abs(b.routing[l].weights[j] - a.routing[l].weights[j]) < 1e-3f);
                }
            }
        };
        same(live.tokens(), replay.tokens());
        if (QTest::currentTestFailed()) return;
        same(live.messageTokens(), replay.messageTokens());
        if (QTest::currentTestFailed()) return;
        QCOMPARE(replay.topExpert(0, 1), 3);  // answer indices are unchanged by the message rows
        // Cache series recomputed for 3 prompt + 2 answer tokens.
        QCOMPARE(replay.cacheSeries().size(), std::size_t(5));
        QCOMPARE(replay.cacheSeries().back().latent_bytes_used, std::uint64_t(500));
        QCOMPARE(replay.cacheSeries().back().mha_equivalent_bytes, std::uint64_t(2000));
        QCOMPARE(replay.cacheSeries().back().gqa8_equivalent_bytes, std::uint64_t(1000));
    }

    void replayWithoutModelKeepsRoutingOnly()
    {
        AnswerTrace live(shape());
        live.append(row(10, false, "a", {{3, 2}, {0, 1}}));
        const AnswerTrace replay = AnswerTrace::fromStorage(live.toStorage(), TraceShape{}, 5);
        QCOMPARE(replay.tokens().size(), std::size_t(1));
        QCOMPARE(replay.shape().nRoutedExperts, 4);
        QCOMPARE(replay.shape().moeLayers, (std::vector<int>{1, 2}));
        QVERIFY(replay.cacheSeries().empty());  // sizes unknown: the panel says so
    }

    // Chart axes of whole numbers put their ticks on whole numbers: 1, 2 or 5 x 10^k.
    void integerAxisTicks()
    {
        QCOMPARE(integerTickStep(1, 6), 1);
        QCOMPARE(integerTickStep(5, 6), 1);
        QCOMPARE(integerTickStep(9, 6), 2);
        QCOMPARE(integerTickStep(34, 6), 10);
        QCOMPARE(integerTickStep(26, 6), 10);
        QCOMPARE(integerTickStep(4000, 6), 1000);
        QCOMPARE(integerTickStep(100000, 6), 20000);
        for (int max = 1; max < 3000; max += 7) {
            const int step = integerTickStep(max, 6);
            QVERIFY2(max / step <= 5, qPrintable(QString("max %1 step %2").arg(max).arg(step)));
        }
        QValueAxis axis;
        setIntegerAxis(&axis, 9);
        QCOMPARE(axis.tickType(), QValueAxis::TicksDynamic);
        QCOMPARE(axis.tickInterval(), 2.0);
        QCOMPARE(axis.tickAnchor(), 0.0);
        QCOMPARE(axis.max(), 9.0);
    }

    void expertLoadFigures()
    {
        AnswerTrace a(shape());
        a.append(row(1, false, "x", {{0, 1}, {0, 1}}));
        a.append(row(2, false, "y", {{0, 2}, {0, 1}}));
        const std::vector<LayerLoad> load = computeLoad({&a});
        QCOMPARE(load.size(), std::size_t(2));
        QCOMPARE(load[0].layer, 1);
        QCOMPARE(load[0].counts, (std::vector<int>{2, 1, 1, 0}));
        // mean 1, max 2; population sd sqrt(0.5)
        QCOMPARE(load[0].maxOverMean, 2.0);
        QVERIFY(std::abs(load[0].cv - std::sqrt(0.5)) < 1e-12);
        QCOMPARE(load[1].counts, (std::vector<int>{2, 2, 0, 0}));
        QCOMPARE(load[1].maxOverMean, 2.0);
        QCOMPARE(load[1].cv, 1.0);
        // Two traces (the chat scope) add up.
        const std::vector<LayerLoad> both = computeLoad({&a, &a});
        QCOMPARE(both[0].counts, (std::vector<int>{4, 2, 2, 0}));
    }
};

QTEST_GUILESS_MAIN(TestAnswerTrace)
#include "test_answer_trace.moc"
