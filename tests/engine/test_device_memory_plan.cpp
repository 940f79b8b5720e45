// The GPU memory plan's arithmetic (no GPU needed): DeepSeek-V2-Lite's published
// size, exact cache sizes per type, and the refusal message; device names; and
// --device cuda refused with the probe's reason where no GPU answers.
#include <QTest>

#include "device/device_memory_plan.h"
#include "moelens/devices.h"
#include "moelens/error.h"
#include "moelens/model.h"
#include "moelens/synthetic.h"

using namespace moelens;

class TestDeviceMemoryPlan : public QObject {
    Q_OBJECT

private slots:
    void v2_lite_weights_match_the_published_size()
    {
        SyntheticModelSpec spec;
        spec.layers = 27;
        const ModelConfig c = synthetic_model_config(spec);
        // DeepSeek-V2-Lite: 15.7B parameters in total.
        const double params = static_cast<double>(model_weight_bytes(c, 2)) / 2.0;
        QVERIFY2(params > 15.6e9 && params < 15.8e9, QByteArray::number(params, 'g', 6));
    }

    void cache_rows_and_pages_are_exact()
    {
        QCOMPARE(device_latent_row_bytes(DeviceCacheType::bf16, 576), 1152ull);
        QCOMPARE(device_latent_row_bytes(DeviceCacheType::f32, 576), 2304ull);
        QCOMPARE(device_latent_row_bytes(DeviceCacheType::fp8_e4m3, 576), 576ull + 9 * 4);
        QCOMPARE(device_latent_row_bytes(DeviceCacheType::fp8_e4m3, 40), 40ull + 4);  // one short block

        SyntheticModelSpec spec;
        spec.layers = 27;
        const ModelConfig c = synthetic_model_config(spec);
        DeviceMemoryRequest r;
        r.context_tokens = 4096;
        r.sequences = 2;
        r.cache = DeviceCacheType::bf16;
        QCOMPARE(plan_device_memory(c, r).latent_cache, 27ull * 2 * 4096 * 1152);
        // 4097 tokens take a whole extra page of 64 rows
        r.context_tokens = 4097;
        QCOMPARE(plan_device_memory(c, r).latent_cache, 27ull * 2 * (4096 + 64) * 1152);
        r.cache = DeviceCacheType::fp8_e4m3;
        QCOMPARE(plan_device_memory(c, r).latent_cache, 27ull * 2 * (4096 + 64) * 612);
    }

    void workspace_grows_with_the_step()
    {
        SyntheticModelSpec spec;
        const ModelConfig c = synthetic_model_config(spec);
        DeviceMemoryRequest r;
        r.context_tokens = 1024;
        const auto one = plan_device_memory(c, r).workspace;
        r.step_tokens = 512;
        const auto chunk = plan_device_memory(c, r).workspace;
        QVERIFY(chunk > one);
        // a 512-token prefill step holds at least its logits in f32
        QVERIFY(chunk >= 512ull * c.vocab_size * 4);
    }

    void refusal_names_every_part()
    {
        SyntheticModelSpec spec;
        spec.layers = 27;
        const ModelConfig c = synthetic_model_config(spec);
        DeviceMemoryRequest r;
        r.weight_bytes = model_weight_bytes(c, 2);
        r.context_tokens = 32768;
        r.sequences = 64;
        r.cache = DeviceCacheType::bf16;
        const DeviceMemoryPlan p = plan_device_memory(c, r);
        // fits an H200's 140 GiB? 31 GB of weights + 64 x 32K x 27 x 1152 B = 65 GB of cache: yes
        check_device_memory(p, r, 140ull << 30, "cuda:0");
        try {
            check_device_memory(p, r, 40ull << 30, "cuda:0");
            QFAIL("expected a BackendError");
        } catch (const BackendError& e) {
            const QString m = e.what();
            QVERIFY2(m.contains("does not fit on cuda:0") && m.contains("latent cache") && m.contains("64 x 32768") &&
                         m.contains("40.00 GiB is free") && m.contains("fp8"),
                     e.what());
        }
        try {
            check_device_memory(p, r, 16ull << 30, "cuda:1");
            QFAIL("expected a BackendError");
        } catch (const BackendError& e) {
            QVERIFY2(QString(e.what()).contains("weights alone do not fit"), e.what());
        }
    }

    void device_names_parse()
    {
        QVERIFY(!parse_device("cpu").cuda);
        QVERIFY(parse_device("cuda").cuda);
        QCOMPARE(parse_device("cuda").index, 0);
        QCOMPARE(parse_device("cuda:3").index, 3);
        for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA", "cuda:123456"}) {
            try {
                parse_device(bad);
                QFAIL(qPrintable(QString("'%1' accepted").arg(bad)));
            } catch (const BackendError& e) {
                QVERIFY2(QString(e.what()).contains("expected cpu, cuda or cuda:N"), e.what());
            }
        }
    }

    void cuda_without_a_gpu_is_refused_with_the_reason()
    {
        const DeviceReport& r = probe_devices();
        if (r.cuda_usable) QSKIP("a GPU is usable here; tests/gpu covers loading onto it");
        LoadOptions o;
        o.device = "cuda:0";
        try {
            load_model(std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden" / "lite", o);
            QFAIL("expected a BackendError");
        } catch (const BackendError& e) {
            const QString m = e.what();
            QVERIFY2(m.contains("--device cuda:0 requested but CUDA is not usable") &&
                         m.contains(QString::fromStdString(r.reason).section(';', 0, 0)) && !m.contains("using the CPU"),
                     e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestDeviceMemoryPlan)
#include "test_device_memory_plan.moc"
