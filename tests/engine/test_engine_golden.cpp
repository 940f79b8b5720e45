// The engine against the golden outputs of DeepSeek's official reference
// implementation (tests/fixtures/golden/README.md): every variant, through both
// the absorbed and the naive attention path.
#include <QTest>

#include <algorithm>
#include <cmath>
#include <map>

#include "moelens/forward_trace.h"
#include "moelens/session.h"
#include "moelens/model.h"
#include "golden_compare.h"

using namespace moelens;
using namespace moelens::testing;

namespace {

const std::filesystem::path kGolden = std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden";

}  // namespace

class TestEngineGolden : public QObject {
    Q_OBJECT

private slots:
    void golden_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::addColumn<bool>("naive");
        QTest::addColumn<bool>("resident");  // weights copied into large pages, or read through the file mapping
        for (const char* v : {"lite", "v2", "v2-f32"}) {
            QTest::newRow((std::string(v) + "/absorbed/resident").c_str()) << QString(v) << false << true;
            QTest::newRow((std::string(v) + "/naive/mapped").c_str()) << QString(v) << true << false;
        }
    }

    void golden()
    {
        QFETCH(QString, variant);
        QFETCH(bool, naive);
        QFETCH(bool, resident);
        const auto dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        LoadOptions options{2, {}};
        options.memory = resident ? WeightsMemory::resident : WeightsMemory::mapped;
        auto model = load_model(dir, options);
        QCOMPARE(model->info().resident_bytes > 0, resident);
        const ModelConfig& c = model->config();
        const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
        const std::vector<int> want_greedy = as_int(golden.to_i64("greedy_tokens"));

        const ForwardTrace tr = run_forward_trace(model, tokens, static_cast<int>(want_greedy.size()),
                                                  naive ? AttentionPath::naive : AttentionPath::absorbed);

        // Logits: max abs 1e-3 (README: f32 engines land near 3e-5).
        const std::vector<float> want_logits = golden.to_f32("logits");
        QCOMPARE(tr.logits.size(), want_logits.size());
        const Diff d = max_abs_diff(tr.logits, want_logits);
        if (d.max_abs > 1e-3)
            QFAIL(qPrintable(QString("prefill logits differ by %1 at token %2, id %3").arg(d.max_abs).arg(d.at / c.vocab_size).arg(d.at % c.vocab_size)));
        qInfo("%s: prefill max |diff| %.3g", qPrintable(variant), d.max_abs);
        for (std::size_t t = 0; t < tokens.size(); ++t)
            QCOMPARE(row_argmax(tr.logits, t, c.vocab_size), row_argmax(want_logits, t, c.vocab_size));

        QCOMPARE(tr.greedy_tokens, want_greedy);
        const std::vector<float> want_greedy_logits = golden.to_f32("greedy_logits");
        QCOMPARE(tr.greedy_logits.size(), want_greedy_logits.size());
        const Diff g = max_abs_diff(tr.greedy_logits, want_greedy_logits);
        if (g.max_abs > 1e-3)
            QFAIL(qPrintable(QString("greedy logits differ by %1 at step %2").arg(g.max_abs).arg(g.at / c.vocab_size)));
        qInfo("%s: greedy max |diff| %.3g", qPrintable(variant), g.max_abs);

        // Routing: identical expert sets, weights within 1e-4 * max(1, scale).
        const double wtol = 1e-4 * std::max(1.0, c.routed_scaling_factor);
        int moe_layers = 0;
        for (const auto& [name, info] : golden.tensors()) {
            if (name.rfind("topk_idx.", 0) != 0) continue;
            ++moe_layers;
            const int layer = std::stoi(name.substr(9));
            QVERIFY2(tr.topk_idx.count(layer), qPrintable(QString("no routing for layer %1").arg(layer)));
            const std::vector<int> want_idx = as_int(golden.to_i64(name));
            const auto& got_idx = tr.topk_idx.at(layer);
            for (std::size_t i = 0; i < want_idx.size(); ++i)
                if (got_idx[i] != want_idx[i])
                    QFAIL(qPrintable(QString("layer %1 token %2: expert %3, golden %4").arg(layer).arg(i / c.num_experts_per_tok).arg(got_idx[i]).arg(want_idx[i])));
            const Diff w = max_abs_diff(tr.topk_weight.at(layer), golden.to_f32("topk_weight." + std::to_string(layer)));
            if (w.max_abs > wtol)
                QFAIL(qPrintable(QString("layer %1 routing weight differs by %2 (tolerance %3)").arg(layer).arg(w.max_abs).arg(wtol)));
        }
        QCOMPARE(moe_layers, static_cast<int>(tr.topk_idx.size()));
        QVERIFY(moe_layers > 0);
    }

    // Session::prefill (batched, the path the application uses for prompts):
    // the last prompt row's logits and every token's routing against the golden.
    void batched_prefill_data()
    {
        QTest::addColumn<QString>("variant");
        for (const char* v : {"lite", "v2", "v2-f32"}) QTest::newRow(v) << QString(v);
    }
    void batched_prefill()
    {
        QFETCH(QString, variant);
        const auto dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_model(dir, LoadOptions{2, {}});
        const ModelConfig& c = model->config();
        const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
        const std::size_t k = c.num_experts_per_tok;
        std::map<int, std::vector<std::vector<int>>> sets;  // layer -> per token sorted ids
        Session session(model);
        const auto logits = session.prefill(tokens, [&](const TokenEvent& e) {
            for (const RoutingRecord& r : e.routing) {
                std::vector<int> ids = r.experts;
                std::sort(ids.begin(), ids.end());
                sets[r.layer].push_back(ids);
            }
            return true;
        });
        const std::vector<float> want = golden.to_f32("logits");
        const std::vector<float> last(want.end() - c.vocab_size, want.end());
        const Diff d = max_abs_diff(std::vector<float>(logits.begin(), logits.end()), last);
        QVERIFY2(d.max_abs <= 1e-3, qPrintable(QString("last prefill row differs by %1").arg(d.max_abs)));
        for (const auto& [layer, rows] : sets) {
            QCOMPARE(rows.size(), tokens.size());
            const std::vector<int> want_idx = as_int(golden.to_i64("topk_idx." + std::to_string(layer)));
            for (std::size_t t = 0; t < rows.size(); ++t)
                QCOMPARE(rows[t], std::vector<int>(want_idx.begin() + t * k, want_idx.begin() + (t + 1) * k));
        }
        QVERIFY(!sets.empty());
    }
};

QTEST_GUILESS_MAIN(TestEngineGolden)
#include "test_engine_golden.moc"
