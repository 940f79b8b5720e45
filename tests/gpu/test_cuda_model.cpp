// The whole model on the GPU (moelens_cuda plugin, --device cuda) against the
// golden outputs of DeepSeek's reference implementation: precise mode within the
// CPU's own tolerance (1e-3 on logits, identical routing), and the fast mode's
// deviation from it measured and printed (top-1 agreement, max logit error).
// Skips, with the probe's reason, when the plugin finds no usable GPU.
#include <QTest>

#include <algorithm>
#include <cmath>

#include "moelens/devices.h"
#include "moelens/error.h"
#include "moelens/forward_trace.h"
#include "moelens/model.h"
#include "moelens/scheduler.h"
#include "moelens/session.h"
#include "golden_compare.h"

using namespace moelens;
using namespace moelens::testing;

namespace {

const std::filesystem::path kGolden = std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden";

std::shared_ptr<const Model> load_on_gpu(const std::filesystem::path& dir, GpuMode mode)
{
    LoadOptions o;
    o.threads = 2;
    o.device = "cuda:0";
    o.gpu.mode = mode;
    o.gpu.context = 256;
    o.gpu.step_tokens = 16;  // the goldens' prompts (32, 40 tokens) then span several device calls
    return load_model(dir, o);
}

}  // namespace

class TestCudaModel : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        const DeviceReport& r = probe_devices();
        if (!r.cuda_usable) QSKIP(r.reason.c_str());
        qInfo("%s: %s", r.gpus[0].name.c_str(), r.reason.c_str());
    }

    void golden_precise_data()
    {
        QTest::addColumn<QString>("variant");
        for (const char* v : {"lite", "v2", "v2-f32"}) QTest::newRow(v) << QString(v);
    }
    void golden_precise()
    {
        QFETCH(QString, variant);
        const auto dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        auto model = load_on_gpu(dir, GpuMode::precise);
        const ModelConfig& c = model->config();
        const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
        const std::vector<int> want_greedy = as_int(golden.to_i64("greedy_tokens"));
        const ForwardTrace tr =
            run_forward_trace(model, tokens, static_cast<int>(want_greedy.size()), AttentionPath::absorbed);

        const std::vector<float> want_logits = golden.to_f32("logits");
        QCOMPARE(tr.logits.size(), want_logits.size());
        const Diff pd = max_abs_diff(tr.logits, want_logits);
        const double d = pd.max_abs;
        QVERIFY2(d <= 1e-3, qPrintable(QString("prefill logits differ by %1 at token %2, id %3")
                                           .arg(d).arg(pd.at / c.vocab_size).arg(pd.at % c.vocab_size)));
        qInfo("%s precise: prefill max |diff| %.3g", qPrintable(variant), d);
        QCOMPARE(tr.greedy_tokens, want_greedy);
        const Diff gd = max_abs_diff(tr.greedy_logits, golden.to_f32("greedy_logits"));
        const double g = gd.max_abs;
        QVERIFY2(g <= 1e-3, qPrintable(QString("greedy logits differ by %1 at step %2").arg(g).arg(gd.at / c.vocab_size)));
        qInfo("%s precise: greedy max |diff| %.3g", qPrintable(variant), g);

        const double wtol = 1e-4 * std::max(1.0, c.routed_scaling_factor);
        int moe_layers = 0;
        for (const auto& [name, info] : golden.tensors()) {
            if (name.rfind("topk_idx.", 0) != 0) continue;
            ++moe_layers;
            const int layer = std::stoi(name.substr(9));
            QVERIFY2(tr.topk_idx.count(layer), qPrintable(QString("no routing for layer %1").arg(layer)));
            QCOMPARE(tr.topk_idx.at(layer), as_int(golden.to_i64(name)));
            const double w = max_abs_diff(tr.topk_weight.at(layer), golden.to_f32("topk_weight." + std::to_string(layer))).max_abs;
            QVERIFY2(w <= wtol, qPrintable(QString("layer %1 routing weight differs by %2").arg(layer).arg(w)));
        }
        QVERIFY(moe_layers > 0);
    }

    // Session::prefill on the device (prompt chunks of 16 tokens at once): the
    // last row's logits against the golden.
    void golden_batched_prefill_precise()
    {
        for (const char* v : {"lite", "v2", "v2-f32"}) {
            const auto dir = kGolden / v;
            const SafetensorsFile golden(dir / "golden.safetensors");
            auto model = load_on_gpu(dir, GpuMode::precise);
            Session session(model);
            const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
            const auto logits = session.prefill(tokens);
            const std::vector<float> want = golden.to_f32("logits");
            const std::vector<float> last(want.end() - model->config().vocab_size, want.end());
            const double d = max_abs_diff(std::vector<float>(logits.begin(), logits.end()), last).max_abs;
            QVERIFY2(d <= 1e-3, qPrintable(QString("%1: last prefill row differs by %2").arg(v).arg(d)));
        }
    }

    // The batched step on the device: the golden prompt beside two other
    // sequences in one Scheduler gives the golden greedy tokens and the same
    // routing as alone; the naive path is refused on the GPU, not replaced.
    void scheduler_batch_precise()
    {
        for (const char* v : {"lite", "v2"}) {
            const auto dir = kGolden / v;
            const SafetensorsFile golden(dir / "golden.safetensors");
            auto model = load_on_gpu(dir, GpuMode::precise);
            const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
            const std::vector<int> want = as_int(golden.to_i64("greedy_tokens"));
            SchedulerOptions opt;
            opt.step_tokens = 16;
            Scheduler s(model, opt);
            SamplingParams greedy = SamplingParams::greedy();
            greedy.max_new_tokens = static_cast<int>(want.size());
            greedy.stop_at_eos = false;
            std::vector<int> got;
            int finished = 0;
            for (int i = 0; i < 3; ++i) {
                GenerationRequest r;
                r.prompt = i == 1 ? tokens : std::vector<int>(tokens.begin(), tokens.begin() + 5 + 7 * i);
                r.sampling = greedy;
                r.on_finish = [&, i](SequenceId, const GenerationResult& g) {
                    ++finished;
                    if (i == 1) got = g.tokens;
                };
                s.submit(std::move(r));
            }
            s.run();
            QCOMPARE(finished, 3);
            QCOMPARE(got, want);
            bool refused = false;
            try {
                s.open(AttentionPath::naive);
            } catch (const Error&) {
                refused = true;
            }
            QVERIFY2(refused, "the naive path was accepted on the GPU");
        }
    }

    // The fast mode (bf16 latent cache; bf16 GEMM inputs for 16+ token chunks)
    // against the precise one on the same prompts: measured, printed, and held to
    // a bound far from what a broken path gives (agreement near 1/vocab).
    void fast_mode_deviation()
    {
        for (const char* v : {"lite", "v2", "v2-f32"}) {
            const auto dir = kGolden / v;
            const SafetensorsFile golden(dir / "golden.safetensors");
            const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
            const ForwardTrace precise =
                run_forward_trace(load_on_gpu(dir, GpuMode::precise), tokens, 8, AttentionPath::absorbed);
            const ForwardTrace fast = run_forward_trace(load_on_gpu(dir, GpuMode::fast), tokens, 8, AttentionPath::absorbed);
            const std::size_t vocab = precise.vocab;
            int agree = 0;
            for (std::size_t t = 0; t < tokens.size(); ++t)
                agree += row_argmax(precise.logits, t, vocab) == row_argmax(fast.logits, t, vocab);
            const double err = max_abs_diff(fast.logits, precise.logits).max_abs;
            const double frac = double(agree) / tokens.size();
            qInfo("%s fast vs precise: top-1 agreement %d/%zu (%.1f%%), max logit error %.3g", v, agree, tokens.size(),
                  100.0 * frac, err);
            QVERIFY2(std::isfinite(err) && frac >= 0.75, qPrintable(QString("%1: fast mode agrees on %2 of tokens").arg(v).arg(frac)));
        }
    }
};

QTEST_GUILESS_MAIN(TestCudaModel)
#include "test_cuda_model.moc"
