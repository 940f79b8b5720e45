// The compare view on the built-in trained model, driven through the real window:
// a 3-column comparison (two sampling settings and one MoE setting) runs in one
// batch; every column's text equals the same settings run alone on a Session of
// its own; the overlap, only-here and drift tables hold the values computed here,
// independently, from the traces the store kept; clicking a column shows its
// routing; a column is kept as a chat branch with its settings recorded; after a
// restart the comparison reopens from Chat > Saved Comparisons and runs again to
// the same answers; Stop stops one column alone and Esc every column.
#include <QAction>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QMenu>
#include <QPlainTextEdit>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>

#include <memory>
#include <set>

#include "app_paths.h"
#include "chat/input_box.h"
#include "compare/compare_column.h"
#include "compare/compare_view.h"
#include "compare/routing_diff_view.h"
#include "main_window.h"
#include "moelens/model.h"
#include "moelens/session.h"
#include "moelens_storage/store.h"
#include "viz/routing_map.h"
#include "workers/chat_codec.h"
#include "workers/engine_worker.h"
#include "workers/worker_threads.h"

namespace {

constexpr int kLoadTimeoutMs = 60000;
constexpr int kRunTimeoutMs = 120000;
constexpr int kMaxTokens = 24;
const QString kQuestion = QStringLiteral("How do I read a file line by line?");

// A: greedy; B: sampled (its own seed); C: greedy like A with one routed expert per token.
std::vector<ColumnSettings> threeColumns(const GenerationSettings& base)
{
    ColumnSettings a;
    a.sampling = base;
    a.sampling.temperature = 0;
    a.sampling.seed = 11;
    a.sampling.maxTokens = kMaxTokens;
    ColumnSettings b = a;
    b.sampling.temperature = 0.9;
    b.sampling.topP = 0.9;
    b.sampling.seed = 7;
    ColumnSettings c = a;
    c.moe.experts_per_token = 1;
    return {a, b, c};
}

using ExpertSets = std::vector<std::set<int>>;  // [layer]

// Per layer, the experts a stored trace's generated rows used.
ExpertSets usedExperts(const moelens::storage::RoutingTrace& t)
{
    ExpertSets used(t.layers.size());
    for (std::size_t r = t.n_prompt_tokens; r < t.n_tokens(); ++r)
        for (std::size_t l = 0; l < t.layers.size(); ++l)
            for (std::size_t j = 0; j < t.top_k; ++j) used[l].insert(t.expert_ids[r * t.row_stride() + l * t.top_k + j]);
    return used;
}

std::set<int> rowExperts(const moelens::storage::RoutingTrace& t, std::size_t row, std::size_t layer)
{
    std::set<int> s;
    for (std::size_t j = 0; j < t.top_k; ++j) s.insert(t.expert_ids[row * t.row_stride() + layer * t.top_k + j]);
    return s;
}

double cellValue(QTableWidget* table, int row, int column)
{
    QTableWidgetItem* item = table->item(row, column);
    return item ? item->data(Qt::UserRole).toDouble() : -1.0;
}

}  // namespace

class TestCompareView : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_paths = std::make_unique<AppPaths>(m_dir.path());
        QVERIFY(m_paths->ensureExists(nullptr));
        start();
        // A chat to compare over: one greedy answer to the question.
        GenerationSettings s = m_window->generationSettings();
        s.temperature = 0;
        s.maxTokens = 8;
        m_window->setGenerationSettings(s);
        QSignalSpy finished(m_workers->engine(), &EngineWorker::generationFinished);
        QTest::keyClicks(m_window->input(), kQuestion);
        QTest::keyClick(m_window->input(), Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kRunTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(!m_window->isGenerating() && m_window->currentChat() != 0, 10000);
        m_chat = m_window->currentChat();
    }

    void threeColumnsRunTogetherAsEachAlone()
    {
        MainWindow& w = *m_window;
        QSignalSpy opened(&w, &MainWindow::compareOpened);
        QTest::keyClick(&w, Qt::Key_C, Qt::ControlModifier | Qt::ShiftModifier);
        QTRY_VERIFY_WITH_TIMEOUT(opened.count() == 1, 10000);
        CompareView* view = w.compareViews().value(0);
        QVERIFY(view);
        QCOMPARE(w.centreTabs()->currentWidget(), view);
        // Ctrl+Shift+N / Ctrl+Shift+W add and remove columns (2 to start).
        view->setFocus();
        QCOMPARE(view->columnCount(), 2);
        QTest::keyClick(view, Qt::Key_N, Qt::ControlModifier | Qt::ShiftModifier);
        QCOMPARE(view->columnCount(), 3);
        QTest::keyClick(view, Qt::Key_W, Qt::ControlModifier | Qt::ShiftModifier);
        QCOMPARE(view->columnCount(), 2);
        const std::vector<ColumnSettings> columns = threeColumns(w.generationSettings());
        view->setColumns(columns);
        QCOMPARE(view->columnCount(), 3);
        QVERIFY(view->column(2)->findChild<QLabel*>("moeLabel")->text().contains("1 of 16 experts"));
        QCOMPARE(view->column(0)->findChild<QLabel*>("moeLabel")->text(), QString("model's routing"));

        // Ctrl+Return runs every column; all stream together and finish.
        QSignalSpy started(m_workers->engine(), &EngineWorker::compareStarted);
        QTest::keyClick(view, Qt::Key_Return, Qt::ControlModifier);
        QTRY_VERIFY_WITH_TIMEOUT(started.count() == 1, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(!view->isRunning() && !w.isComparing(), kRunTimeoutMs);
        for (int c = 0; c < 3; ++c) {
            const auto result = view->column(c)->result();
            QVERIFY(result);
            QVERIFY2(result->error.empty(), result->error.c_str());
            QVERIFY(result->tokens_out > 0);
            QVERIFY(view->column(c)->findChild<QLabel*>("columnStats")->text().contains("tok/s"));
        }
        QTRY_VERIFY_WITH_TIMEOUT(view->storedId() != 0, 10000);
        m_comparison = view->storedId();

        // Each column alone: a Session of its own over the same prompt and settings.
        const auto model = moelens::load_model(w.modelDir().toStdString());
        ChatCodec codec(w.modelDir());
        const int context = std::min(w.generationSettings().contextTokens, model->config().max_position_embeddings);
        const ChatCodec::Encoded prompt = codec.encodeChat({{"user", kQuestion}}, context - kMaxTokens);
        QCOMPARE(started.at(0).at(1).toInt(), int(prompt.tokens.size()));
        for (int c = 0; c < 3; ++c) {
            const CompareColumnRequest request = columns[std::size_t(c)].request();
            moelens::SessionOptions options;
            options.max_tokens = context;
            options.moe = request.moe;
            moelens::Session session(model, options);
            const moelens::GenerationResult alone = session.generate(prompt.tokens, request.sampling);
            codec.beginAnswer();
            QString text;
            for (int t : alone.tokens) text += codec.decodeNext(t);
            text += codec.flush();
            QCOMPARE(int(view->column(c)->result()->tokens_out), int(alone.tokens.size()));
            QCOMPARE(view->column(c)->text(), text);
            m_texts << text;
        }
        QVERIFY(m_texts[0] != m_texts[1] || m_texts[0] != m_texts[2]);
    }

    void routingTablesHoldTheStoredTracesValues()
    {
        CompareView* view = m_window->compareViews().value(0);
        QVERIFY(view);
        auto store = moelens::storage::Store::open(m_paths->databaseFile().toStdString());
        QTRY_VERIFY_WITH_TIMEOUT(store.load_comparison(m_comparison)->columns.at(2).trace.has_value(), 10000);
        const moelens::storage::Comparison stored = *store.load_comparison(m_comparison);
        QCOMPARE(int(stored.columns.size()), 3);
        std::vector<moelens::storage::RoutingTrace> traces;
        for (const auto& c : stored.columns) traces.push_back(*c.trace);
        const std::size_t layers = traces[0].layers.size();
        QVERIFY(layers > 0);
        QCOMPARE(int(traces[2].top_k), 1);
        checkTables(view, traces);
        m_overlap = tableValues(view->diffView()->overlapTable());
        m_columnValues = tableValues(view->diffView()->columnTable());

        // A and C share sampling and seed: where their tokens first differ is said.
        std::optional<std::size_t> diverge;
        for (std::size_t i = traces[0].n_prompt_tokens, j = traces[2].n_prompt_tokens;
             !diverge && i < traces[0].n_tokens() && j < traces[2].n_tokens(); ++i, ++j)
            if (traces[0].token_ids[i] != traces[2].token_ids[j]) diverge = i - traces[0].n_prompt_tokens;
        const QString notes = view->diffView()->notes()->text();
        QVERIFY2(diverge ? notes.contains(QString("A and C (same sampling and seed, other MoE settings): tokens first "
                                                 "diverge at generated position %1.").arg(*diverge))
                         : notes.contains("A and C (same sampling and seed, other MoE settings): the same tokens"),
                 qPrintable(notes));
        QVERIFY(!notes.contains("A and B"));
    }

    void clickingAColumnShowsItsRouting()
    {
        MainWindow& w = *m_window;
        CompareView* view = w.compareViews().value(0);
        QPlainTextEdit* text = view->column(2)->findChild<QPlainTextEdit*>("columnText");
        QTest::mouseClick(text->viewport(), Qt::LeftButton);
        QCOMPARE(w.routingMap()->trace(), &view->column(2)->trace());
        QCOMPARE(int(w.shownTrace().tokens().size()), int(view->column(2)->result()->tokens_out));
        QCOMPARE(w.shownTrace().shape().topK, 1);
        QCOMPARE(int(w.shownTrace().tokens().front().routing.size()), int(w.shownTrace().shape().moeLayers.size()));
    }

    void keepingAColumnMakesABranch()
    {
        CompareView* view = m_window->compareViews().value(0);
        QSignalSpy kept(view, &CompareView::branchKept);
        view->column(1)->findChild<QToolButton*>("keepButton")->click();
        QTRY_VERIFY_WITH_TIMEOUT(kept.count() == 1, 10000);
        QCOMPARE(kept.at(0).at(0).value<moelens::storage::ChatId>(), m_chat);
        const auto reply = kept.at(0).at(1).value<moelens::storage::MessageId>();
        auto store = moelens::storage::Store::open(m_paths->databaseFile().toStdString());
        const std::vector<moelens::storage::Message> path = store.load_current_path(m_chat);
        QCOMPARE(path.back().id, reply);
        QCOMPARE(QString::fromStdString(path.back().content), m_texts[1]);
        QCOMPARE(path.back().sibling_count, 2);  // beside the chat's own answer
        const std::vector<moelens::storage::Run> runs = store.list_runs(reply);
        QCOMPARE(int(runs.size()), 1);
        QVERIFY(runs[0].has_trace);
        const QJsonObject sampling = QJsonDocument::fromJson(QByteArray::fromStdString(runs[0].record.sampling_json)).object();
        QCOMPARE(sampling["compare_column"].toString(), QString("B"));
        QCOMPARE(sampling["seed"].toInt(), 7);
        QVERIFY(sampling["moe"].isObject());
    }

    void reopensAfterRestartAndRunsAgain()
    {
        m_window.reset();
        m_workers.reset();
        start();
        MainWindow& w = *m_window;
        QMenu* saved = w.savedComparisonsMenu();
        QAction* reopen = nullptr;
        QTRY_VERIFY_WITH_TIMEOUT((reopen = [&]() -> QAction* {
                                     for (QAction* a : saved->actions())
                                         if (a->data().toLongLong() == m_comparison) return a;
                                     return nullptr;
                                 }()) != nullptr,
                                 10000);
        QSignalSpy opened(&w, &MainWindow::compareOpened);
        reopen->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(opened.count() == 1, 10000);
        CompareView* view = w.compareViews().value(0);
        QCOMPARE(view->columnCount(), 3);
        QCOMPARE(view->storedId(), m_comparison);
        for (int c = 0; c < 3; ++c) QCOMPARE(view->column(c)->text(), m_texts[c]);
        QVERIFY(view->column(2)->findChild<QLabel*>("moeLabel")->text().contains("1 of 16 experts"));
        QCOMPARE(tableValues(view->diffView()->overlapTable()), m_overlap);
        QCOMPARE(tableValues(view->diffView()->columnTable()), m_columnValues);

        // Run again: a new stored comparison with the same answers (fixed seeds).
        view->setFocus();
        QTest::keyClick(view, Qt::Key_Return, Qt::ControlModifier);
        QTRY_VERIFY_WITH_TIMEOUT(view->isRunning(), 10000);
        QTRY_VERIFY_WITH_TIMEOUT(!view->isRunning(), kRunTimeoutMs);
        for (int c = 0; c < 3; ++c) QCOMPARE(view->column(c)->text(), m_texts[c]);
        QTRY_VERIFY_WITH_TIMEOUT(view->storedId() != 0 && view->storedId() != m_comparison, 10000);
    }

    // The engine is held at compareStarted (before any token) while the test acts,
    // so what is stopped does not depend on how fast the columns run.
    void stopOneColumnThenEscStopsAll()
    {
        MainWindow& w = *m_window;
        CompareView* view = w.compareViews().value(0);
        EngineWorker* engine = m_workers->engine();
        QSemaphore held, release;
        const QMetaObject::Connection hold = connect(engine, &EngineWorker::compareStarted, engine, [&] {
            held.release();
            release.acquire();
        }, Qt::DirectConnection);

        QVERIFY2(!view->isRunning() && !w.isComparing(), "a comparison is still running");
        view->run();
        QVERIFY(view->isRunning());
        QTRY_VERIFY_WITH_TIMEOUT(held.available() == 1, 10000);  // (QTRY evaluates twice)
        held.acquire();
        view->column(1)->findChild<QToolButton*>("columnStop")->click();
        release.release();
        QTRY_VERIFY_WITH_TIMEOUT(!view->isRunning(), kRunTimeoutMs);
        QCOMPARE(QString::fromStdString(view->column(1)->result()->stop_reason), QString("cancelled"));
        QCOMPARE(int(view->column(1)->result()->tokens_out), 0);
        for (int c : {0, 2}) {
            QVERIFY(view->column(c)->result()->stop_reason != "cancelled");
            QCOMPARE(view->column(c)->text(), m_texts[c]);
        }

        view->run();
        QVERIFY(view->isRunning());
        QTRY_VERIFY_WITH_TIMEOUT(held.available() == 1, 10000);
        held.acquire();
        QTRY_VERIFY(w.isComparing());
        w.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&w));
        QTest::keyClick(view, Qt::Key_Escape);
        release.release();
        QTRY_VERIFY_WITH_TIMEOUT(!view->isRunning() && !w.isComparing(), kRunTimeoutMs);
        for (int c = 0; c < 3; ++c) {
            QCOMPARE(QString::fromStdString(view->column(c)->result()->stop_reason), QString("cancelled"));
            QCOMPARE(int(view->column(c)->result()->tokens_out), 0);
        }
        disconnect(hold);
        // The chat is usable again once the comparison ended.
        QVERIFY(!w.input()->isReadOnly());
    }

    void cleanupTestCase()
    {
        m_window.reset();
        m_workers.reset();
    }

private:
    void start()
    {
        m_workers = std::make_unique<WorkerThreads>(m_paths->databaseFile());
        m_window = std::make_unique<MainWindow>(*m_paths, m_workers->engine(), m_workers->storage(), MainWindow::Options{});
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        QTRY_VERIFY_WITH_TIMEOUT(m_window->isModelLoaded(), kLoadTimeoutMs);
        QCOMPARE(QDir(m_window->modelDir()), QDir(AppPaths::builtinModelDir()));
    }

    // Every table cell's exact value, row by row.
    static QList<QList<double>> tableValues(QTableWidget* t)
    {
        QList<QList<double>> out;
        for (int r = 0; r < t->rowCount(); ++r) {
            QList<double> row;
            for (int c = 0; c < t->columnCount(); ++c) row << cellValue(t, r, c);
            out << row;
        }
        return out;
    }

    // The three tables recomputed from the stored traces, by hand.
    static void checkTables(CompareView* view, const std::vector<moelens::storage::RoutingTrace>& traces)
    {
        const std::size_t n = traces.size(), layers = traces[0].layers.size();
        std::vector<ExpertSets> used;
        for (const auto& t : traces) used.push_back(usedExperts(t));
        QTableWidget* overlap = view->diffView()->overlapTable();
        QCOMPARE(overlap->rowCount(), int(layers) + 1);
        int pair = 0;
        for (std::size_t a = 0; a < n; ++a)
            for (std::size_t b = a + 1; b < n; ++b, ++pair) {
                double sum = 0;
                for (std::size_t l = 0; l < layers; ++l) {
                    std::size_t both = 0;
                    for (int e : used[a][l]) both += used[b][l].count(e);
                    const std::size_t either = used[a][l].size() + used[b][l].size() - both;
                    const double j = either ? double(both) / double(either) : 1.0;
                    sum += j;
                    QCOMPARE(cellValue(overlap, int(l), pair), j);
                }
                QVERIFY(std::abs(cellValue(overlap, int(layers), pair) - sum / double(layers)) < 1e-12);
            }
        QCOMPARE(overlap->columnCount(), pair);

        // Per column: experts no other column used, and drift from A (the model's
        // routing) over the rows where both saw the same tokens.
        QTableWidget* table = view->diffView()->columnTable();
        QCOMPARE(table->columnCount(), int(n) * 2);
        bool anyDrift = false;
        for (std::size_t c = 0; c < n; ++c) {
            for (std::size_t l = 0; l < layers; ++l) {
                int only = 0;
                for (int e : used[c][l]) {
                    bool elsewhere = false;
                    for (std::size_t o = 0; o < n; ++o) elsewhere = elsewhere || (o != c && used[o][l].count(e));
                    only += elsewhere ? 0 : 1;
                }
                QCOMPARE(cellValue(table, int(l), int(c) * 2), double(only));
            }
            if (c == 0) continue;
            const auto& x = traces[c];
            const auto& d = traces[0];
            std::vector<std::pair<std::size_t, std::size_t>> rows;
            for (std::size_t i = 0; i < x.n_prompt_tokens && i < d.n_prompt_tokens && x.token_ids[i] == d.token_ids[i]; ++i)
                rows.emplace_back(i, i);
            for (std::size_t i = x.n_prompt_tokens, j = d.n_prompt_tokens;
                 i < x.n_tokens() && j < d.n_tokens() && x.token_ids[i] == d.token_ids[j]; ++i, ++j)
                rows.emplace_back(i, j);
            QVERIFY(!rows.empty());
            for (std::size_t l = 0; l < layers; ++l) {
                int changed = 0;
                for (const auto& [i, j] : rows) changed += rowExperts(x, i, l) != rowExperts(d, j, l) ? 1 : 0;
                const double share = double(changed) / double(rows.size());
                QCOMPARE(cellValue(table, int(l), int(c) * 2 + 1), share);
                if (c == 1) QCOMPARE(share, 0.0);  // B routes as A: only its sampling differs
                anyDrift = anyDrift || share > 0;
            }
        }
        // C routes each token to 1 expert where A uses 2: every compared row differs.
        QVERIFY(anyDrift);
    }

    QTemporaryDir m_dir;
    std::unique_ptr<AppPaths> m_paths;
    std::unique_ptr<WorkerThreads> m_workers;
    std::unique_ptr<MainWindow> m_window;
    moelens::storage::ChatId m_chat = 0;
    moelens::storage::ComparisonId m_comparison = 0;
    QStringList m_texts;
    QList<QList<double>> m_overlap;
    QList<QList<double>> m_columnValues;
};

QTEST_MAIN(TestCompareView)
#include "test_compare_view.moc"
