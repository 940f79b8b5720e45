// Session::stage_times: the per-part timing moelens-bench prints. Checks the
// bookkeeping, not speeds: parts are non-negative, inside the total, counted
// per token, the MoE parts are timed on MoE models, and reset() clears them.
#include <QTest>

#include <filesystem>

#include "moelens/model.h"
#include "moelens/session.h"

using namespace moelens;

class TestStageTimes : public QObject {
    Q_OBJECT

private slots:
    void partsAddUpAndReset()
    {
        const auto dir = std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden" / "lite";
        const auto model = load_model(dir, LoadOptions{2, {}});
        Session s(model);
        QCOMPARE(s.stage_times().tokens, 0);
        for (int t : {1, 5, 9, 200, 33}) s.step(t);
        const StageTimes st = s.stage_times();
        QCOMPARE(st.tokens, 5);
        const double parts[] = {st.attention, st.router, st.shared_experts, st.routed_experts, st.dense_ffn, st.lm_head};
        double sum = 0.0;
        for (double p : parts) {
            QVERIFY(p >= 0.0);
            sum += p;
        }
        QVERIFY(st.total > 0.0);
        QVERIFY(sum <= st.total);
        // lite has a dense first layer and MoE layers with shared experts.
        QVERIFY(st.attention > 0.0);
        QVERIFY(st.dense_ffn > 0.0);
        QVERIFY(st.router > 0.0);
        // A decoded token runs shared and routed experts as one sum, timed as routed.
        QCOMPARE(st.shared_experts, 0.0);
        QVERIFY(st.routed_experts > 0.0);
        QVERIFY(st.lm_head > 0.0);
        // Batched prefill times the shared experts apart.
        const int prompt[] = {3, 4, 5, 6};
        s.prefill(prompt);
        QCOMPARE(s.stage_times().tokens, 9);
        QVERIFY(s.stage_times().shared_experts > 0.0);

        s.reset();
        QCOMPARE(s.stage_times().tokens, 0);
        QCOMPARE(s.stage_times().total, 0.0);
    }
};

QTEST_GUILESS_MAIN(TestStageTimes)
#include "test_stage_times.moc"
