// The Devices panel on the built-in demo model (16 experts in 4 groups, 2 per
// token) spread over 4 virtual devices: what it shows live and after a restart
// equals what the routing the engine handed to the UI implies, counted here by
// hand; a device out of memory stops that answer with a clear error, the app
// goes on, and the next answer (memory raised) runs; compare columns carry
// their own traffic under their own device limit.
#include <QBarSet>
#include <QLabel>
#include <QMutex>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>

#include "app_paths.h"
#include "hand_traffic.h"
#include "chat/conversation_view.h"
#include "chat/input_box.h"
#include "main_window.h"
#include "moelens/model.h"
#include "viz/devices_panel.h"
#include "workers/compare_types.h"
#include "workers/engine_worker.h"
#include "workers/worker_threads.h"

using moelens::testing::HandTraffic;

namespace {

constexpr int kTimeoutMs = 60000;
constexpr int kDevices = 4;

// Every row the engine handed over (the prompt read and the answer).
struct Rows {
    QMutex mutex;
    TokenRows rows;
    void add(const TokenRow& r)
    {
        QMutexLocker lock(&mutex);
        rows.push_back(r);
    }
    TokenRows take()
    {
        QMutexLocker lock(&mutex);
        TokenRows out;
        out.swap(rows);
        return out;
    }
};

// What the exchange must have moved for these rows, from their routing alone.
HandTraffic handCount(const TokenRows& rows, const std::vector<int>& deviceOf, int home)
{
    HandTraffic want(kDevices);
    for (const TokenRow& row : rows) want.add_all(row.routing, deviceOf, home);
    return want;
}

qulonglong cell(QTableWidget* t, int row, int column, int role = Qt::UserRole)
{
    QTableWidgetItem* item = t->item(row, column);
    return item ? item->data(role).toULongLong() : ~0ull;
}

// The panel against the hand count: traffic matrix, per-device rows, histogram.
void checkPanel(DevicesWidget* panel, const HandTraffic& want, int home)
{
    const int D = want.devices;
    QTableWidget* traffic = panel->trafficTable();
    QCOMPARE(traffic->rowCount(), D);
    for (int a = 0; a < D; ++a)
        for (int b = 0; b < D; ++b) {
            QCOMPARE(cell(traffic, a, b + 1), qulonglong(want.dispatch[std::size_t(a * D + b)]));
            QCOMPARE(cell(traffic, a, b + 1, Qt::UserRole + 1), qulonglong(want.combine[std::size_t(a * D + b)]));
        }
    QTableWidget* placement = panel->placementTable();
    QCOMPARE(placement->rowCount(), D);
    for (int d = 0; d < D; ++d) {
        std::uint64_t in = 0, out = 0;
        for (int o = 0; o < D; ++o)
            if (o != d) in += want.dispatch[std::size_t(o * D + d)], out += want.combine[std::size_t(d * D + o)];
        QCOMPARE(cell(placement, d, 3), qulonglong(want.products[std::size_t(d)]));
        QCOMPARE(cell(placement, d, 4), qulonglong(in));
        QCOMPARE(cell(placement, d, 5), qulonglong(out));
        QCOMPARE(placement->item(d, 0)->text().contains("home"), d == home);
    }
    QBarSet* bars = panel->histogram();
    QVERIFY(bars);
    QCOMPARE(bars->count(), D);
    for (int n = 1; n <= D; ++n) QCOMPARE(qulonglong(bars->at(n - 1)), qulonglong(want.touched[std::size_t(n)]));
}

}  // namespace

class TestDevicesPanel : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_paths = std::make_unique<AppPaths>(m_dir.path());
        QVERIFY(m_paths->ensureExists(nullptr));
        start(true);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->isModelLoaded(), kTimeoutMs);
        m_info = moelens::inspect_model(m_window->modelDir().toStdString());
        QCOMPARE(m_info.n_group, kDevices);  // the demo's groups: one per device by default
        GenerationSettings s = m_window->generationSettings();
        s.temperature = 0;
        s.maxTokens = 12;
        QCOMPARE(s.virtualDevices, -1);  // the model's groups
        m_window->setGenerationSettings(s);
    }

    // Live, then the run's stored figures: both equal the hand count from the rows
    // the engine handed over; experts by group (group g on device g), home d0; no
    // token over the limit of 2 devices.
    void trafficEqualsTheRouting()
    {
        MainWindow& w = *m_window;
        const TokenRows rows = answer("How do the experts share the work?");
        QVERIFY(rows.size() > 12);
        const std::optional<DeviceTraffic>& d = w.shownTrace().devices();
        QVERIFY(d.has_value());
        const int per = m_info.n_routed_experts / m_info.n_group;
        std::vector<int> deviceOf;
        for (int e = 0; e < m_info.n_routed_experts; ++e) deviceOf.push_back(e / per);
        QCOMPARE(d->placement.device_of, deviceOf);
        QVERIFY(d->placement.device_limited);
        QCOMPARE(d->traffic.home, 0);
        const HandTraffic want = handCount(rows, deviceOf, 0);
        checkPanel(w.devices(), want, 0);
        for (int n = m_info.topk_group + 1; n <= kDevices; ++n) QCOMPARE(want.touched[std::size_t(n)], std::uint64_t{0});
        const QString summary = w.devices()->summary()->text();
        QVERIFY2(summary.contains("4 virtual devices") && summary.contains("0 over the device limit"), qPrintable(summary));
        m_stored = d->toJson();
        m_expected = std::make_unique<HandTraffic>(want);
    }

    // Memory per device that holds the weights and one row's experts but not a
    // prompt's: the answer stops with an error naming the device; the window
    // stays usable, and with no limit the same message is answered.
    void outOfMemoryStopsTheAnswer()
    {
        MainWindow& w = *m_window;
        const DeviceTraffic d = *DeviceTraffic::fromJson(m_stored);
        std::uint64_t weights = 0;
        for (std::uint64_t b : d.placement.weight_bytes) weights = std::max(weights, b);
        const std::uint64_t row = 4ull * (2 * m_info.config.hidden_size + 2 * m_info.config.moe_intermediate_size) *
                                  std::uint64_t(m_info.top_k);
        GenerationSettings s = w.generationSettings();
        s.deviceMemoryMiB = double(weights + row + 16) / (1024.0 * 1024.0);
        QSignalSpy applied(m_workers->engine(), &EngineWorker::devicesApplied);
        w.setGenerationSettings(s);
        QTRY_VERIFY_WITH_TIMEOUT(applied.count() == 1, kTimeoutMs);
        QCOMPARE(applied.at(0).at(0).toInt(), kDevices);
        QVERIFY(applied.at(0).at(1).toString().isEmpty());

        // A rebuilt session reads the whole chat again: one chunk, too many rows for a device.
        QSignalSpy finished(m_workers->engine(), &EngineWorker::generationFinished);
        send("And now?");
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kTimeoutMs);
        const GenerationSummary failed = finished.at(0).at(0).value<GenerationSummary>();
        QVERIFY2(failed.error.contains("out of memory") && failed.error.contains("virtual device"), qPrintable(failed.error));
        QCOMPARE(failed.generatedTokens, 0);
        QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating() && !w.input()->isReadOnly(), kTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QWidget*>("errorBox") != nullptr, 10000);
        m_rows.take();

        s.deviceMemoryMiB = 0;
        w.setGenerationSettings(s);
        QTRY_VERIFY_WITH_TIMEOUT(applied.count() == 2, kTimeoutMs);
        const TokenRows rows = answer("And now, with room?");
        QVERIFY(w.shownTrace().devices().has_value());
        const HandTraffic want = handCount(rows, w.shownTrace().devices()->placement.device_of, 0);
        checkPanel(w.devices(), want, 0);
        m_stored = w.shownTrace().devices()->toJson();
        m_expected = std::make_unique<HandTraffic>(want);
    }

    // The compare view's what-if: columns run on the chat's devices, each with its
    // own device limit; a column at M = 1 reaches one device per token-layer, and
    // each column's traffic is its rows counted by hand from its home (sequences
    // take the devices in turn).
    void compareColumnsCarryTheirTraffic()
    {
        CompareRequest request;
        request.id = 77;
        request.turns = {{QStringLiteral("user"), QStringLiteral("Compare the devices, please.")}};
        for (int m : {0, 1}) {
            CompareColumnRequest c;
            c.sampling = moelens::SamplingParams::greedy();
            c.sampling.max_new_tokens = 8;
            c.sampling.stop_at_eos = false;
            c.moe.device_limit = m;
            request.columns.push_back(c);
        }
        EngineWorker* engine = m_workers->engine();
        QSignalSpy columns(engine, &EngineWorker::compareColumnFinished);
        QSignalSpy done(engine, &EngineWorker::compareFinished);
        QMetaObject::invokeMethod(engine, [engine, request] { engine->compare(request); }, Qt::QueuedConnection);
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, kTimeoutMs);
        QCOMPARE(columns.count(), 2);
        for (const QList<QVariant>& args : columns) {
            const CompareColumnResult r = args.at(0).value<CompareColumnResult>();
            QVERIFY2(r.error.isEmpty(), qPrintable(r.error));
            QVERIFY(r.devices.has_value());
            const int limit = r.column == 0 ? m_info.topk_group : 1;
            QCOMPARE(r.devices->deviceLimit, limit);
            const HandTraffic want = handCount(r.rows, r.devices->placement.device_of, r.column % kDevices);
            const moelens::ExpertTraffic& t = r.devices->traffic;
            QCOMPARE(t.home, r.column % kDevices);
            QCOMPARE(t.dispatch_rows, want.dispatch);
            QCOMPARE(t.combine_rows, want.combine);
            QCOMPARE(t.touched, want.touched);
            for (int n = limit + 1; n <= kDevices; ++n) QCOMPARE(t.touched[std::size_t(n)], std::uint64_t{0});
        }
        m_rows.take();
    }

    // After a restart without a model: the newest answer's figures from the store.
    void storedAnswerShowsItsTraffic()
    {
        m_window.reset();
        m_workers.reset();
        start(false);
        MainWindow& w = *m_window;
        QTRY_VERIFY_WITH_TIMEOUT(w.selectedAnswer() != 0 && w.shownTrace().devices().has_value(), kTimeoutMs);
        QCOMPARE(w.shownTrace().devices()->toJson(), m_stored);
        checkPanel(w.devices(), *m_expected, 0);
    }

private:
    void start(bool loadModel)
    {
        m_workers = std::make_unique<WorkerThreads>(m_paths->databaseFile());
        m_workers->engine()->tokens().setTap([this](const TokenRow& r) { m_rows.add(r); });
        MainWindow::Options options;
        options.loadModelOnStart = loadModel;
        options.randomDemoOnStart = true;  // answers run to max tokens
        m_window = std::make_unique<MainWindow>(*m_paths, m_workers->engine(), m_workers->storage(), options);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    }

    void send(const QString& text)
    {
        QTest::keyClicks(m_window->input(), text);
        QTest::keyClick(m_window->input(), Qt::Key_Return);
    }

    // Sends `text`, waits for the answer and its panels; returns the rows of it.
    TokenRows answer(const QString& text)
    {
        MainWindow& w = *m_window;
        m_rows.take();
        QSignalSpy finished(m_workers->engine(), &EngineWorker::generationFinished);
        send(text);
        [&] { QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kTimeoutMs); }();
        const GenerationSummary s = finished.at(0).at(0).value<GenerationSummary>();
        [&] {
            QVERIFY2(s.error.isEmpty(), qPrintable(s.error));
            QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating() && w.shownTrace().tokens().size() == 12, kTimeoutMs);
        }();
        return m_rows.take();
    }

    QTemporaryDir m_dir;
    std::unique_ptr<AppPaths> m_paths;
    std::unique_ptr<WorkerThreads> m_workers;
    std::unique_ptr<MainWindow> m_window;
    moelens::ModelInfo m_info;
    Rows m_rows;
    QByteArray m_stored;
    std::unique_ptr<HandTraffic> m_expected;
};

QTEST_MAIN(TestDevicesPanel)
#include "test_devices_panel.moc"
