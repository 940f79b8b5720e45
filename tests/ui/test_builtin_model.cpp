// A fresh profile opens on the built-in trained model (resources/demo-model) and
// answers a question in words, not the random demo's token soup: most words of the
// greedy answer must be whole words of the model's own vocabulary (the random demo
// scores near zero here, the trained model well above half).
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
};

QTEST_MAIN(TestBuiltinModel)
#include "test_builtin_model.moc"
