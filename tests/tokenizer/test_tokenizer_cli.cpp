// moelens-cli tokenize / detokenize / chat-template through a real process: the
// JSON Lines contracts of issue 4, byte for byte.
#include <fstream>
#include <string>

#include <QProcess>
#include <QtTest>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

struct Result {
    int exit_code;
    QByteArray out, err;
};

Result run_cli(const QStringList& args, const QByteArray& input)
{
    QProcess p;
    p.start(QStringLiteral(MOELENS_BIN_DIR "/moelens-cli"), args);
    if (!p.waitForStarted(10000)) return {-1, {}, "did not start"};
    p.write(input);
    p.closeWriteChannel();
    p.waitForFinished(120000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
            p.readAllStandardError()};
}

const QString kTokenizer = QStringLiteral(MOELENS_RESOURCES_DIR "/tokenizer");

std::vector<json> golden_cases()
{
    std::ifstream in(MOELENS_FIXTURES_DIR "/tokenizer/encode_golden.jsonl");
    std::vector<json> cases;
    std::string line;
    while (std::getline(in, line)) cases.push_back(json::parse(line));
    return cases;
}

}  // namespace

class TestTokenizerCli : public QObject {
    Q_OBJECT

private slots:
    // Every golden text in one run: one output line per input line, in order.
    void tokenizeMatchesGoldens()
    {
        const auto cases = golden_cases();
        QByteArray input;
        for (const json& c : cases) input += QByteArray::fromStdString(json{{"text", c["text"]}}.dump() + "\n");
        for (const char* mode : {"", "--bos"}) {
            QStringList args{"tokenize", "--tokenizer", kTokenizer};
            if (*mode) args << mode;
            const Result r = run_cli(args, input);
            QVERIFY2(r.exit_code == 0, r.err.constData());
            const QList<QByteArray> lines = r.out.split('\n');
            QCOMPARE(lines.size(), qsizetype(cases.size() + 1));  // trailing newline
            for (std::size_t i = 0; i < cases.size(); ++i)
                QCOMPARE(json::parse(lines[qsizetype(i)].toStdString())["ids"],
                         cases[i][*mode ? "ids_with_bos" : "ids"]);
        }
    }

    void detokenizeMatchesGoldens()
    {
        const auto cases = golden_cases();
        QByteArray input;
        for (const json& c : cases) input += QByteArray::fromStdString(json{{"ids", c["ids"]}}.dump() + "\n");
        const Result r = run_cli({"detokenize", "--tokenizer", kTokenizer, "--skip-special"}, input);
        QVERIFY2(r.exit_code == 0, r.err.constData());
        const QList<QByteArray> lines = r.out.split('\n');
        for (std::size_t i = 0; i < cases.size(); ++i)
            QCOMPARE(json::parse(lines[qsizetype(i)].toStdString())["text"], cases[i]["decoded_skip_special"]);
    }

    void chatTemplatePrintsExactly()
    {
        std::ifstream in(MOELENS_FIXTURES_DIR "/tokenizer/chat_golden.json");
        for (const json& c : json::parse(in)) {
            const json request = {{"messages", c["messages"]}, {"add_generation_prompt", c["add_generation_prompt"]}};
            const Result r = run_cli({"chat-template", "--model", kTokenizer}, QByteArray::fromStdString(request.dump()));
            QVERIFY2(r.exit_code == 0, r.err.constData());
            QCOMPARE(r.out.toStdString(), c["rendered"].get<std::string>());  // no newline added
        }
    }

    void badInputIsAnError()
    {
        Result r = run_cli({"tokenize", "--tokenizer", kTokenizer}, "{\"text\": \"ok\"}\nnot json\n");
        QCOMPARE(r.exit_code, 1);
        QCOMPARE(r.out, QByteArray("{\"ids\": [633]}\n"));
        QVERIFY2(r.err.contains("stdin line 2"), r.err.constData());
        r = run_cli({"tokenize", "--tokenizer", "/nonexistent"}, "");
        QCOMPARE(r.exit_code, 1);
        QVERIFY2(r.err.contains("/nonexistent: no such file"), r.err.constData());
        r = run_cli({"tokenize", "--tokenizer", kTokenizer, "--bos", "--add-special"}, "");
        QCOMPARE(r.exit_code, 2);
    }
};

QTEST_GUILESS_MAIN(TestTokenizerCli)
#include "test_tokenizer_cli.moc"
