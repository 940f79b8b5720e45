// Drives the real window with the built-in demo model: a prompt streams an answer
// whose routing map, expert load and cache panels hold exactly what the engine
// reported (captured at the engine's hand-over queue); Esc stops within a token;
// Ctrl+R makes a second branch; a restart without a model shows the chat, its
// branches and the routing map replayed from the database; export and import.
#include <QDockWidget>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QTableWidget>
#include <QTextBrowser>
#include <QLineSeries>
#include <QListWidget>
#include <QToolButton>
#include <QBarSet>
#include <QCheckBox>
#include <QMutex>
#include <QWaitCondition>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>

#include "app_paths.h"
#include "chat/chat_list.h"
#include "chat/conversation_view.h"
#include "chat/input_box.h"
#include "chat/message_widget.h"
#include "main_window.h"
#include "viz/devices_panel.h"
#include "viz/expert_load.h"
#include "viz/latent_cache.h"
#include "viz/routing_map.h"
#include "workers/engine_worker.h"
#include "workers/worker_threads.h"

namespace {

constexpr int kLoadTimeoutMs = 60000;
constexpr int kAnswerTimeoutMs = 60000;

// Everything the engine handed to the UI, seen at the queue (engine thread).
// It can also park the engine after a chosen generated token, so a test can act
// at a known point of the answer however the threads happen to be scheduled.
struct Capture {
    QMutex mutex;
    QWaitCondition released;
    TokenRows rows;
    std::size_t generatedCount = 0;
    std::size_t holdAt = 0;  // 0: never hold
    bool holding = false;
    void add(const TokenRow& r)
    {
        QMutexLocker lock(&mutex);
        rows.push_back(r);
        if (r.isPrompt) return;
        if (++generatedCount == holdAt) {
            holding = true;
            while (holding) released.wait(&mutex);
        }
    }
    void holdAfter(std::size_t n)
    {
        QMutexLocker lock(&mutex);
        holdAt = n;
    }
    bool isHolding()
    {
        QMutexLocker lock(&mutex);
        return holding;
    }
    void release()
    {
        QMutexLocker lock(&mutex);
        holdAt = 0;
        holding = false;
        released.wakeAll();
    }
    TokenRows generated()
    {
        QMutexLocker lock(&mutex);
        TokenRows out;
        for (const TokenRow& r : rows)
            if (!r.isPrompt) out.push_back(r);
        return out;
    }
    TokenRows message()
    {
        QMutexLocker lock(&mutex);
        TokenRows out;
        for (const TokenRow& r : rows)
            if (r.isPrompt && r.inLatestMessage) out.push_back(r);
        return out;
    }
    moelens::CacheStats lastCache()
    {
        QMutexLocker lock(&mutex);
        return rows.empty() ? moelens::CacheStats{} : rows.back().cache;
    }
    void clear()
    {
        QMutexLocker lock(&mutex);
        rows.clear();
        generatedCount = 0;
    }
};

void compareRouting(const TokenRows& expected, const TokenRows& shown, bool weightsExact)
{
    QCOMPARE(shown.size(), expected.size());
    for (std::size_t t = 0; t < expected.size(); ++t) {
        QCOMPARE(shown[t].token, expected[t].token);
        QCOMPARE(shown[t].text, expected[t].text);
        QCOMPARE(shown[t].routing.size(), expected[t].routing.size());
        for (std::size_t l = 0; l < expected[t].routing.size(); ++l) {
            QCOMPARE(shown[t].routing[l].layer, expected[t].routing[l].layer);
            QCOMPARE(shown[t].routing[l].experts, expected[t].routing[l].experts);
            for (std::size_t j = 0; j < expected[t].routing[l].weights.size(); ++j) {
                const float a = expected[t].routing[l].weights[j], b = shown[t].routing[l].weights[j];
                // The store keeps gate weights as binary16 (about 3 significant digits).
                QVERIFY2(weightsExact ? a == b : std::abs(a - b) <= 1e-3f * std::max(1.0f, std::abs(a)),
                         qPrintable(QString("token %1 layer %2 weight %3: %4 vs %5").arg(t).arg(l).arg(j).arg(a).arg(b)));
            }
        }
    }
}

moelens::storage::MessageId lastAnswerId(MainWindow& w)
{
    moelens::storage::MessageId id = 0;
    for (const ShownMessage& m : w.conversation()->messages())
        if (m.message.role == moelens::storage::Role::Assistant) id = m.message.id;
    return id;
}

MessageWidget* lastAnswerWidget(MainWindow& w)
{
    MessageWidget* last = nullptr;
    for (MessageWidget* m : w.conversation()->messageWidgets())
        if (m->role() == moelens::storage::Role::Assistant) last = m;
    return last;
}

}  // namespace

class TestChatFlow : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_paths = std::make_unique<AppPaths>(m_dir.path());
        QVERIFY(m_paths->ensureExists(nullptr));
        start(true);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->isModelLoaded(), kLoadTimeoutMs);
        GenerationSettings s = m_window->generationSettings();
        s.temperature = 0;  // greedy: the same answer every time
        s.maxTokens = 12;
        m_window->setGenerationSettings(s);
    }

    void promptStreamsAnswerWithEngineRouting()
    {
        MainWindow& w = *m_window;
        QVERIFY(!w.input()->isReadOnly());
        QTest::keyClicks(w.input(), "Hello, experts!");
        // Shift+Enter adds a line instead of sending.
        QTest::keyClick(w.input(), Qt::Key_Return, Qt::ShiftModifier);
        QVERIFY(w.input()->toPlainText().contains('\n'));
        QVERIFY(!w.isGenerating());
        QTest::keyClicks(w.input(), "Which of you answers?");
        QSignalSpy finished(m_workers->engine(), &EngineWorker::generationFinished);
        QTest::keyClick(w.input(), Qt::Key_Return);
        // (12 demo tokens take milliseconds: streaming itself is seen in escStopsWithinOneToken.)
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kAnswerTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating(), kAnswerTimeoutMs);
        QSignalSpy shown(&w, &MainWindow::chatShown);
        QTRY_VERIFY_WITH_TIMEOUT(w.selectedAnswer() != 0 && lastAnswerWidget(w) && !lastAnswerWidget(w)->findChild<QLabel*>("stats")->text().isEmpty(), 10000);

        const TokenRows engine = m_capture.generated();
        QCOMPARE(int(engine.size()), 12);
        m_firstAnswer = engine;
        // Routing map: the trace it draws holds exactly the engine's expert ids and weights.
        QCOMPARE(w.routingMap()->trace(), &w.shownTrace());
        compareRouting(engine, w.shownTrace().tokens(), true);
        QVERIFY(w.routingMap()->currentLayer() >= 0);
        const QString details = w.routingMap()->canvas()->tokenDetails(0);
        for (int e : engine[0].routing[0].experts) QVERIFY2(details.contains(QString("e%1 ").arg(e)), qPrintable(details));
        // Before the answer the map draws the prompt tokens of the message answered,
        // with the routing the engine reported for them during prefill.
        const TokenRows message = m_capture.message();
        QVERIFY(message.size() > 8);
        compareRouting(message, w.shownTrace().messageTokens(), true);
        QString messageText;
        for (const TokenRow& r : message) messageText += r.text;
        QVERIFY2(messageText.contains("Hello, experts!\nWhich of you answers?"), qPrintable(messageText));
        QCOMPARE(w.routingMap()->canvas()->columns(), int(message.size() + engine.size()));
        QVERIFY(w.routingMap()->canvas()->messageTokenDetails(0).contains("your message"));
        w.routingMap()->findChild<QCheckBox*>("routingShowMessage")->setChecked(false);
        QCOMPARE(w.routingMap()->canvas()->columns(), int(engine.size()));
        w.routingMap()->findChild<QCheckBox*>("routingShowMessage")->setChecked(true);
        // Clicking the message's first column shows that token's experts in the Devices panel.
        QTest::mouseClick(w.routingMap()->canvas(), Qt::LeftButton, {}, w.routingMap()->canvas()->columnRect(0).center());
        auto* deviceTable = w.devices()->tokenTable();
        QVERIFY(deviceTable && deviceTable->rowCount() == int(message[0].routing.size()));
        QVERIFY2(deviceTable->toolTip().startsWith("your message, token 0"), qPrintable(deviceTable->toolTip()));
        for (int e : message[0].routing[0].experts)
            QVERIFY(deviceTable->item(0, 1)->text().contains(QString("e%1\u2192").arg(e)));

        // Expert load: bar heights = how often the engine chose each expert at the shown layer.
        const int layer = w.expertLoad()->currentLayer();
        QVERIFY(layer >= 0);
        std::vector<int> counts(std::size_t(w.shownTrace().shape().nRoutedExperts), 0);
        for (const TokenRow& row : engine)
            for (const moelens::RoutingRecord& r : row.routing)
                if (r.layer == layer)
                    for (int e : r.experts) ++counts[std::size_t(e)];
        QBarSet* bars = w.expertLoad()->bars();
        QVERIFY(bars);
        QCOMPARE(bars->count(), int(counts.size()));
        for (int e = 0; e < bars->count(); ++e) QCOMPARE(int(bars->at(e)), counts[std::size_t(e)]);

        // Latent cache: the last point and the words are the engine's numbers.
        const moelens::CacheStats cache = m_capture.lastCache();
        QVERIFY(cache.latent_bytes_used > 0);
        QLineSeries* latent = w.latentCache()->latentSeries();
        QVERIFY(latent);
        QCOMPARE(qRound(latent->points().last().x()), cache.tokens_held);
        QCOMPARE(qRound64(latent->points().last().y() * w.latentCache()->unitBytes()), qint64(cache.latent_bytes_used));
        QCOMPARE(qRound64(w.latentCache()->mhaSeries()->points().last().y() * w.latentCache()->unitBytes()),
                 qint64(cache.mha_equivalent_bytes));
        QVERIFY2(w.latentCache()->summary()->text().contains(QString("After %1 tokens").arg(cache.tokens_held)),
                 qPrintable(w.latentCache()->summary()->text()));
        QVERIFY(w.latentCache()->summary()->text().contains("saved"));
        // The answer's text is the streamed text.
        QString text;
        for (const TokenRow& r : engine) text += r.text;
        QCOMPARE(lastAnswerWidget(w)->text(), text);
    }

    void editMakesBranchAndColouringAndAttentionCheck()
    {
        MainWindow& w = *m_window;
        // Edit the first message: it becomes a new branch (2/2) with a new answer.
        MessageWidget* user = w.conversation()->messageWidgets().first();
        QCOMPARE(user->role(), moelens::storage::Role::User);
        QToolButton* edit = user->findChild<QToolButton*>("editButton");
        QVERIFY(edit && edit->isEnabled());
        edit->click();
        QVERIFY(w.input()->toPlainText().startsWith("Hello, experts!"));
        w.input()->clear();
        QTest::keyClicks(w.input(), "Hello again, experts.");
        m_capture.clear();
        QSignalSpy finished(m_workers->engine(), &EngineWorker::generationFinished);
        QTest::keyClick(w.input(), Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kAnswerTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating(), kAnswerTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(w.selectedAnswer() == lastAnswerId(w) && w.shownTrace().tokens().size() == 12, 10000);
        QLabel* branch = w.conversation()->messageWidgets().first()->findChild<QLabel*>("branchLabel");
        QVERIFY(branch);
        QCOMPARE(branch->text(), QString("2/2"));

        // Token colouring: the selected answer's text is drawn token by token.
        QAction* colour = nullptr;
        for (QAction* a : w.findChildren<QAction*>())
            if (a->text().contains("Colour Answer")) colour = a;
        QVERIFY(colour);
        colour->setChecked(true);
        QTextBrowser* body = lastAnswerWidget(w)->findChild<QTextBrowser*>();
        QVERIFY(body->toHtml().contains("background-color"));
        colour->setChecked(false);
        QVERIFY(!body->toHtml().contains("background-color:#"));

        // Absorbed vs naive: the engine reruns prompt + answer through both paths.
        QSignalSpy checked(m_workers->engine(), &EngineWorker::attentionChecked);
        w.checkAttentionPaths();
        QTRY_VERIFY_WITH_TIMEOUT(checked.count() == 1, kAnswerTimeoutMs);
        const auto result = checked.at(0).at(0).value<AttentionCheckResult>();
        QVERIFY2(result.error.isEmpty(), qPrintable(result.error));
        QVERIFY(result.tokensCompared > 12);
        QVERIFY(result.routedDecisions > 0);
        qInfo("absorbed vs naive over %d positions: max |logit diff| %g, %d next-token and %d of %d expert choices changed",
              result.tokensCompared, result.maxLogitDiff, result.argmaxChanges, result.expertChanges, result.routedDecisions);
        QTRY_VERIFY(w.findChild<QMessageBox*>("attentionCheckBox"));
        QVERIFY(w.findChild<QMessageBox*>("attentionCheckBox")->text().contains("Largest logit difference"));
        w.findChild<QMessageBox*>("attentionCheckBox")->close();
    }

    void escStopsWithinOneToken()
    {
        MainWindow& w = *m_window;
        GenerationSettings s = w.generationSettings();
        s.maxTokens = 4000;
        w.setGenerationSettings(s);
        m_capture.clear();
        // The engine parks after its 20th token until Esc has been pressed: on a busy
        // machine the UI thread may otherwise wait many tokens between reading the
        // count and delivering the key, and the test would measure the scheduler.
        m_capture.holdAfter(20);
        QTest::keyClicks(w.input(), "Tell me a long story.");
        QTest::keyClick(w.input(), Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(m_capture.isHolding(), kAnswerTimeoutMs);
        // Tokens stream into the view while the answer is being written.
        QTRY_VERIFY_WITH_TIMEOUT(w.isGenerating() && w.conversation()->streamingWidget() &&
                                     !w.conversation()->streamingWidget()->text().isEmpty(), 10000);
        w.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&w));
        const std::size_t atStop = m_capture.generated().size();
        QCOMPARE(atStop, std::size_t(20));
        // Esc where the focus usually is: the (read-only while writing) input box.
        QTest::keyClick(w.input(), Qt::Key_Escape);
        m_capture.release();
        QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating(), 10000);
        const std::size_t after = m_capture.generated().size();
        // The engine checks the flag once per token: at most the one it was writing finishes.
        QVERIFY2(after <= atStop + 1, qPrintable(QString("%1 tokens at Esc, %2 at the end").arg(atStop).arg(after)));
        QTRY_VERIFY_WITH_TIMEOUT(lastAnswerWidget(w) && lastAnswerWidget(w)->findChild<QLabel*>("stats")->text().contains("cancelled"), 10000);
        m_stoppedAnswer = m_capture.generated();
        m_stoppedMessage = m_capture.message();
        s.maxTokens = 12;
        w.setGenerationSettings(s);
    }

    void ctrlRRegeneratesAsBranch()
    {
        MainWindow& w = *m_window;
        m_capture.clear();
        QSignalSpy finished(m_workers->engine(), &EngineWorker::generationFinished);
        QTest::keyClick(&w, Qt::Key_R, Qt::ControlModifier);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kAnswerTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating(), kAnswerTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(lastAnswerWidget(w) && lastAnswerWidget(w)->findChild<QLabel*>("branchLabel") &&
                                     lastAnswerWidget(w)->findChild<QLabel*>("branchLabel")->text() == "2/2", 10000);
        m_branchAnswer = m_capture.generated();
        m_branchMessage = m_capture.message();
        m_chat = w.currentChat();
    }

    void restartReplaysFromDatabase()
    {
        m_window.reset();
        m_workers.reset();
        start(false);  // no model: the replay must not need one
        MainWindow& w = *m_window;
        // The most recent chat reopens by itself, with its newest answer selected
        // and that answer's routing replayed from the stored trace.
        QTRY_VERIFY_WITH_TIMEOUT(w.chatList()->list()->count() == 1, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(w.currentChat() == m_chat && lastAnswerId(w) != 0, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(w.selectedAnswer() == lastAnswerId(w) &&
                                     w.shownTrace().tokens().size() == m_branchAnswer.size(), 10000);
        QVERIFY(!w.isModelLoaded());
        QCOMPARE(lastAnswerWidget(w)->findChild<QLabel*>("branchLabel")->text(), QString("2/2"));
        compareRouting(m_branchAnswer, w.shownTrace().tokens(), false);
        compareRouting(m_branchMessage, w.shownTrace().messageTokens(), false);
        QCOMPARE(w.routingMap()->trace(), &w.shownTrace());
        QVERIFY(w.expertLoad()->bars());
        // The cache chart is recomputed from the model's sizes.
        QVERIFY(w.latentCache()->latentSeries());

        // The first branch: the stopped answer, with its routing.
        const moelens::storage::MessageId second = lastAnswerId(w);
        QToolButton* prev = lastAnswerWidget(w)->findChild<QToolButton*>("branchPrev");
        QVERIFY(prev && prev->isEnabled());
        prev->click();
        QTRY_VERIFY_WITH_TIMEOUT(lastAnswerId(w) != second && w.selectedAnswer() == lastAnswerId(w) &&
                                     w.shownTrace().tokens().size() == m_stoppedAnswer.size(), 10000);
        QCOMPARE(lastAnswerWidget(w)->findChild<QLabel*>("branchLabel")->text(), QString("1/2"));
        compareRouting(m_stoppedAnswer, w.shownTrace().tokens(), false);
    }

    void ctrlFSearchesAndCtrlNStartsAChat()
    {
        MainWindow& w = *m_window;
        w.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&w));
        QTest::keyClick(&w, Qt::Key_F, Qt::ControlModifier);
        auto* search = w.findChild<QLineEdit*>("chatSearch");
        QVERIFY(search);
        QTRY_VERIFY(search->hasFocus());
        QTest::keyClicks(search, "experts");
        // One hit: the first message ("Hello, experts!..."), found through the store's index.
        QTRY_VERIFY_WITH_TIMEOUT(w.chatList()->list()->count() == 1 &&
                                     w.chatList()->list()->item(0)->text().contains("Hello, experts!"), 10000);
        search->clear();
        QTRY_VERIFY_WITH_TIMEOUT(w.chatList()->list()->count() == 1 &&
                                     !w.chatList()->list()->item(0)->text().contains("Hello, experts!\n"), 10000);
        QVERIFY(w.currentChat() != 0);
        QTest::keyClick(&w, Qt::Key_N, Qt::ControlModifier);
        QCOMPARE(w.currentChat(), moelens::storage::ChatId(0));
        QVERIFY(w.conversation()->messageWidgets().isEmpty());
        QVERIFY(w.findChild<QLabel*>("welcome")->isVisible());
    }

    // File > Export writes the chat as Markdown and every chat as JSON; importing
    // that JSON adds the chat again with its branches and routing traces; a damaged
    // file is refused with an error naming it, and nothing is added.
    void exportAndImportChats()
    {
        MainWindow& w = *m_window;
        const QString md = m_dir.filePath("chat.md"), json = m_dir.filePath("all.json"), bad = m_dir.filePath("bad.json");
        QSignalSpy exported(&w, &MainWindow::chatsExported);
        w.exportChats(md, {m_chat});
        QTRY_COMPARE_WITH_TIMEOUT(exported.count(), 1, 10000);
        QFile mdFile(md);
        QVERIFY(mdFile.open(QIODevice::ReadOnly));
        const QString mdText = QString::fromUtf8(mdFile.readAll());
        QVERIFY2(mdText.contains("Hello, experts!") && mdText.contains("Which of you answers?"), qPrintable(mdText));
        w.exportChats(json, {});
        QTRY_COMPARE_WITH_TIMEOUT(exported.count(), 2, 10000);
        QCOMPARE(exported.at(1).at(1).toInt(), 1);

        QSignalSpy imported(&w, &MainWindow::chatsImported);
        w.importChats(json);
        QTRY_COMPARE_WITH_TIMEOUT(imported.count(), 1, 10000);
        QCOMPARE(imported.at(0).at(1).toInt(), 1);
        QTRY_COMPARE_WITH_TIMEOUT(w.chatList()->list()->count(), 2, 10000);
        // The copy opens on the branch the original was left on (the stopped answer,
        // since the restart test stepped back to it), its routing replayed from the
        // imported trace.
        QTRY_VERIFY_WITH_TIMEOUT(w.currentChat() != 0 && w.currentChat() != m_chat && lastAnswerId(w) != 0 &&
                                     w.selectedAnswer() == lastAnswerId(w) &&
                                     w.shownTrace().tokens().size() == m_stoppedAnswer.size(),
                                 10000);
        QCOMPARE(lastAnswerWidget(w)->findChild<QLabel*>("branchLabel")->text(), QString("1/2"));
        compareRouting(m_stoppedAnswer, w.shownTrace().tokens(), false);
        compareRouting(m_stoppedMessage, w.shownTrace().messageTokens(), false);

        QFile broken(bad);
        QVERIFY(broken.open(QIODevice::WriteOnly));
        broken.write(R"({"format": "moelens-chats", "version": 1, "chats": [{"title": )");
        broken.close();
        w.importChats(bad);
        QMessageBox* box = nullptr;
        QTRY_VERIFY_WITH_TIMEOUT((box = w.findChild<QMessageBox*>("errorBox")) != nullptr, 10000);
        QVERIFY2(box->text().contains(bad) && box->text().contains("Nothing was imported"), qPrintable(box->text()));
        box->close();
        QCOMPARE(imported.count(), 1);
        QCOMPARE(w.chatList()->list()->count(), 2);
    }

    // A failed check must not leave the engine parked (the teardown would wait on it).
    void cleanup() { m_capture.release(); }

    void cleanupTestCase()
    {
        m_window.reset();
        m_workers.reset();
    }

private:
    void start(bool loadModel)
    {
        m_workers = std::make_unique<WorkerThreads>(m_paths->databaseFile());
        m_workers->engine()->tokens().setTap([this](const TokenRow& r) { m_capture.add(r); });
        MainWindow::Options options;
        options.loadModelOnStart = loadModel;
        options.randomDemoOnStart = true;  // its answers never end early at EOS, so Esc can be tested
        m_window = std::make_unique<MainWindow>(*m_paths, m_workers->engine(), m_workers->storage(), options);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    }

    QTemporaryDir m_dir;
    std::unique_ptr<AppPaths> m_paths;
    std::unique_ptr<WorkerThreads> m_workers;
    std::unique_ptr<MainWindow> m_window;
    Capture m_capture;
    TokenRows m_firstAnswer;
    TokenRows m_branchAnswer;
    TokenRows m_branchMessage;
    TokenRows m_stoppedMessage;
    TokenRows m_stoppedAnswer;
    moelens::storage::ChatId m_chat = 0;
};

QTEST_MAIN(TestChatFlow)
#include "test_chat_flow.moc"
