// A fresh profile opens on the built-in trained model (resources/demo-model) and
// answers a question in words, not the random demo's token soup: most words of the
// greedy answer must be whole words of the model's own vocabulary (the random demo
// scores near zero here, the trained model well above half). A conversation longer
// than its 512-token context is answered after its latest turns.
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "app_paths.h"
#include "chat/conversation_view.h"
#include "chat/input_box.h"
#include "chat/message_widget.h"
#include "main_window.h"
#include "workers/engine_worker.h"
#include "workers/worker_threads.h"

namespace {

// Letter-only words the tokenizer holds as single tokens with a leading space ("Ġword").
QSet<QString> vocabularyWords(const QString& tokenizerJson)
{
    QFile f(tokenizerJson);
    if (!f.open(QIODevice::ReadOnly)) return {};
    const QJsonObject vocab = QJsonDocument::fromJson(f.readAll()).object().value("model").toObject().value("vocab").toObject();
    static const QRegularExpression word(QStringLiteral("^\u0120([A-Za-z]{2,})$"));
    QSet<QString> words;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const QRegularExpressionMatch m = word.match(it.key());
        if (m.hasMatch()) words.insert(m.captured(1).toLower());
    }
    return words;
}

}  // namespace

class TestBuiltinModel : public QObject {
    Q_OBJECT

private slots:
    void freshProfileAnswersInWords()
    {
        const QString builtin = AppPaths::builtinModelDir();
        QVERIFY2(!builtin.isEmpty(), "resources/demo-model not found");
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const AppPaths paths(dir.path());
        QVERIFY(paths.ensureExists(nullptr));
        WorkerThreads workers(paths.databaseFile());
        MainWindow w(paths, workers.engine(), workers.storage(), MainWindow::Options{});
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.isModelLoaded(), 60000);
        QCOMPARE(QDir(w.modelDir()), QDir(builtin));

        GenerationSettings s = w.generationSettings();
        s.temperature = 0;
        s.maxTokens = 48;
        w.setGenerationSettings(s);
        QSignalSpy finished(workers.engine(), &EngineWorker::generationFinished);
        QTest::keyClicks(w.input(), "What is a list?");
        QTest::keyClick(w.input(), Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, 60000);
        QTRY_VERIFY_WITH_TIMEOUT(!w.isGenerating(), 10000);

        QString answer;
        for (MessageWidget* m : w.conversation()->messageWidgets())
            if (m->role() == moelens::storage::Role::Assistant) answer = m->text();
        const QSet<QString> vocab = vocabularyWords(builtin + "/tokenizer.json");
        QVERIFY(vocab.size() > 500);
        static const QRegularExpression wordRe(QStringLiteral("[A-Za-z]{2,}"));
        int words = 0, known = 0;
        for (auto it = wordRe.globalMatch(answer); it.hasNext();) {
            ++words;
            if (vocab.contains(it.next().captured(0).toLower())) ++known;
        }
        qInfo("answer (%d words, %d in the vocabulary): %s", words, known, qPrintable(answer));
        QVERIFY2(words >= 8, qPrintable(answer));
        QVERIFY2(known * 10 >= words * 6, qPrintable(answer));
    }

    // The built-in model holds 512 tokens: a long conversation still gets an answer,
    // written after its latest turns, and a message that alone is too long gets an
    // error saying so instead of an empty answer.
    void longConversationsFitTheContext()
    {
        qRegisterMetaType<GenerationSummary>();
        EngineWorker engine;
        QSignalSpy loaded(&engine, &EngineWorker::modelLoaded);
        engine.loadModel(AppPaths::builtinModelDir());  // called directly: runs on this thread
        QCOMPARE(loaded.count(), 1);
        const int context = loaded.at(0).at(0).value<moelens::ModelInfo>().config.max_position_embeddings;
        QCOMPARE(context, 512);

        GenerateRequest request;
        request.sampling.temperature = 0;
        request.sampling.max_new_tokens = 16;
        for (int i = 0; i < 30; ++i) {
            request.turns.push_back({"user", QString("Tell me about lists and loops, part %1.").arg(i)});
            request.turns.push_back({"assistant", "A list holds items in order, and a loop visits each item in turn."});
        }
        request.turns.push_back({"user", "What is a list?"});
        QSignalSpy finished(&engine, &EngineWorker::generationFinished);
        engine.generate(request);
        QCOMPARE(finished.count(), 1);
        const auto fitted = finished.at(0).at(0).value<GenerationSummary>();
        QVERIFY2(fitted.error.isEmpty(), qPrintable(fitted.error));
        QVERIFY(fitted.generatedTokens > 0);
        QVERIFY(fitted.turnsLeftOut > 0 && fitted.turnsLeftOut % 2 == 0 && fitted.turnsLeftOut < 60);
        QVERIFY(fitted.promptTokens + request.sampling.max_new_tokens <= context);
        QCOMPARE(fitted.contextTokens, context);

        request.turns = {{"user", QString("list ").repeated(1000)}};
        engine.generate(request);
        QCOMPARE(finished.count(), 2);
        const auto tooLong = finished.at(1).at(0).value<GenerationSummary>();
        QCOMPARE(tooLong.generatedTokens, 0);
        QCOMPARE(tooLong.stopReason, QString("context_full"));
        QVERIFY2(tooLong.error.contains("context holds 512"), qPrintable(tooLong.error));
    }

    // A chat's next turn continues from the cached conversation: only what follows
    // the earlier turns is read, and the answer is the one a fresh worker, reading
    // the whole chat, gives (greedy).
    void nextTurnReusesTheCachedConversation()
    {
        qRegisterMetaType<GenerationSummary>();
        EngineWorker engine, fresh;
        engine.loadModel(AppPaths::builtinModelDir());
        fresh.loadModel(AppPaths::builtinModelDir());
        GenerateRequest request;
        request.sampling.temperature = 0;
        request.sampling.max_new_tokens = 12;
        request.turns = {{"user", "What is a list?"}};
        QSignalSpy finished(&engine, &EngineWorker::generationFinished);
        engine.generate(request);
        const auto first = finished.at(0).at(0).value<GenerationSummary>();
        QCOMPARE(first.reusedTokens, 0);
        request.turns.push_back({"assistant", first.text});
        request.turns.push_back({"user", "And what is a tuple?"});
        engine.generate(request);
        const auto second = finished.at(1).at(0).value<GenerationSummary>();
        QVERIFY2(second.error.isEmpty(), qPrintable(second.error));
        QVERIFY2(second.reusedTokens > 5 && second.reusedTokens < second.promptTokens,
                 qPrintable(QString("%1 of %2 prompt tokens reused").arg(second.reusedTokens).arg(second.promptTokens)));
        QSignalSpy freshFinished(&fresh, &EngineWorker::generationFinished);
        fresh.generate(request);
        const auto whole = freshFinished.at(0).at(0).value<GenerationSummary>();
        QCOMPARE(whole.reusedTokens, 0);
        QCOMPARE(second.promptTokens, whole.promptTokens);
        QCOMPARE(second.text, whole.text);
    }
};

QTEST_MAIN(TestBuiltinModel)
#include "test_builtin_model.moc"
