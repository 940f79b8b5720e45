// Every moelens-cli and moelens-bench subcommand given values it cannot take:
// each must end with an exit status of 1..127 and a message on stderr, never a
// signal (a crash) or a hang. The values are those a hurried user or a script
// produces: missing files, wrong types, NaN, negative and huge numbers, ids past
// the vocabulary, MoE settings the model does not have.
#include <QTemporaryDir>
#include <QTest>

#include <fstream>

#include "cli_process.h"

using moelens::test::CliRun;
using moelens::test::run_program;

namespace {

const QString kLite = QStringLiteral(MOELENS_FIXTURES_DIR "/golden/lite");
const QString kBuiltin = QStringLiteral(MOELENS_RESOURCES_DIR "/demo-model");

}  // namespace

class TestCliBadValues : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;

private slots:
    void bad_values_data()
    {
        QTest::addColumn<QString>("program");
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QByteArray>("input");
        const QString db = m_tmp.filePath("chats.db");
        const QString garbage = m_tmp.filePath("garbage.json");
        std::ofstream(garbage.toStdString()) << "\x01\x02{not json";
        // Under a regular file: no such folder can be made, not even by root (CI runs as root).
        const QString kNowhere = garbage + "/no/such";
        const auto cli = [](const char* name, QStringList args, QByteArray input = {}) {
            QTest::newRow(name) << QString("moelens-cli") << args << input;
        };
        const auto bench = [](const char* name, QStringList args) {
            QTest::newRow(name) << QString("moelens-bench") << args << QByteArray();
        };
        const QStringList gen{"generate", "--model", kBuiltin, "--tokens", "1,2,3"};

        cli("no command", {});
        cli("unknown command", {"nope"});
        cli("unknown flag", {"devices", "--bogus"});
        cli("info: no model", {"info"});
        cli("info: missing folder", {"info", "--model", kNowhere});
        cli("info: a file, not a folder", {"info", "--model", garbage});
        cli("forward: no out", {"forward", "--model", kLite, "--tokens", "1,2"});
        cli("forward: empty tokens", {"forward", "--model", kLite, "--tokens", "", "--out", m_tmp.filePath("f.safetensors")});
        cli("forward: negative id", {"forward", "--model", kLite, "--tokens", "1,-5", "--out", m_tmp.filePath("f.safetensors")});
        cli("forward: greedy x", {"forward", "--model", kLite, "--tokens", "1", "--greedy", "x", "--out", m_tmp.filePath("f.safetensors")});
        cli("forward: greedy -1", {"forward", "--model", kLite, "--tokens", "1", "--greedy", "-1", "--out", m_tmp.filePath("f.safetensors")});
        cli("forward: out unwritable", {"forward", "--model", kLite, "--tokens", "1", "--out", kNowhere + "/f.safetensors"});
        cli("forward: attention x", {"forward", "--model", kLite, "--tokens", "1", "--attention", "x", "--out", m_tmp.filePath("f.safetensors")});
        cli("make-demo: no folder", {"make-demo"});
        cli("make-demo: seed x", {"make-demo", m_tmp.filePath("demo"), "--seed", "x"});
        cli("make-demo: unwritable", {"make-demo", "/proc/moelens-demo"});
        cli("generate: temperature nan", gen + QStringList{"--temperature", "nan"});
        cli("generate: temperature -1", gen + QStringList{"--temperature", "-1"});
        cli("generate: temperature inf", gen + QStringList{"--temperature", "inf"});
        cli("generate: top-p 2", gen + QStringList{"--top-p", "2"});
        cli("generate: min-p -0.1", gen + QStringList{"--min-p", "-0.1"});
        cli("generate: repeat-penalty 0", gen + QStringList{"--repeat-penalty", "0"});
        cli("generate: max-new-tokens -1", gen + QStringList{"--max-new-tokens", "-1"});
        cli("generate: seed x", gen + QStringList{"--seed", "x"});
        cli("generate: top-k 1e99", gen + QStringList{"--top-k", "1e99"});
        cli("generate: id at vocab", {"generate", "--model", kBuiltin, "--tokens", "4096"});
        cli("generate: id 2^40", {"generate", "--model", kBuiltin, "--tokens", "1099511627776"});
        cli("generate: empty item", {"generate", "--model", kBuiltin, "--tokens", "1,,2"});
        cli("generate: weights x", gen + QStringList{"--weights", "x"});
        cli("generate: threads 2000", gen + QStringList{"--threads", "2000"});
        cli("generate: prompt, no tokenizer", {"generate", "--model", kLite, "--prompt", "hi"});
        cli("generate: chat without prompt", gen + QStringList{"--chat"});
        cli("generate: K 99", gen + QStringList{"--experts-per-token", "99"});
        cli("generate: M on greedy", gen + QStringList{"--device-limit", "1"});
        cli("generate: disable 1:x", gen + QStringList{"--disable-experts", "1:x"});
        cli("generate: virtual devices -1", gen + QStringList{"--virtual-devices", "-1"});
        cli("generate: virtual devices 99", gen + QStringList{"--virtual-devices", "99"});
        cli("generate: device memory -1", gen + QStringList{"--virtual-devices", "2", "--device-memory", "-1"});
        cli("generate: device memory alone", gen + QStringList{"--device-memory", "64"});
        cli("generate: weights over device memory", gen + QStringList{"--virtual-devices", "2", "--device-memory", "0.001"});
        cli("generate: device gpu", gen + QStringList{"--device", "gpu"});
        cli("generate: device cuda:x", gen + QStringList{"--device", "cuda:x"});
        cli("generate: gpu-context 0", gen + QStringList{"--gpu-context", "0"});
        cli("tokenize: missing tokenizer", {"tokenize", "--tokenizer", kNowhere}, "{\"text\":\"a\"}\n");
        cli("tokenize: bad json line", {"tokenize", "--tokenizer", kBuiltin}, "{not json\n");
        cli("tokenize: text not a string", {"tokenize", "--tokenizer", kBuiltin}, "{\"text\":5}\n");
        // (An id past the vocabulary is dropped, as Hugging Face's decode does: not an error.)
        cli("detokenize: id beyond u32", {"detokenize", "--tokenizer", kBuiltin}, "{\"ids\":[4294967296]}\n");
        cli("detokenize: negative id", {"detokenize", "--tokenizer", kBuiltin}, "{\"ids\":[-1]}\n");
        cli("detokenize: ids not numbers", {"detokenize", "--tokenizer", kBuiltin}, "{\"ids\":[\"a\"]}\n");
        cli("chat-template: no template", {"chat-template", "--model", kLite}, "{\"messages\":[]}");
        cli("chat-template: bad input", {"chat-template", "--model", kBuiltin}, "\xff\xfe");
        cli("perplexity: missing text", {"perplexity", "--model", kBuiltin, "--text", kNowhere});
        cli("perplexity: window 0", {"perplexity", "--model", kBuiltin, "--text", garbage, "--window", "0"});
        cli("perplexity: window -5", {"perplexity", "--model", kBuiltin, "--text", garbage, "--window", "-5"});
        cli("export: folder missing", {"export", "--db", kNowhere + "/x.db"});
        cli("export: format x", {"export", "--db", db, "--format", "x"});
        cli("export: chats x", {"export", "--db", db, "--chats", "x"});
        cli("import: missing file", {"import", "--db", db, "--in", kNowhere});
        cli("import: garbage", {"import", "--db", db, "--in", garbage});

        bench("no command", {});
        bench("unknown command", {"nope"});
        bench("tokenizer: missing text", {"tokenizer", "--text", kNowhere});
        bench("tokenizer: reps 0", {"tokenizer", "--text", garbage, "--reps", "0"});
        bench("storage: messages -1", {"storage", "--messages", "-1"});
        bench("storage: folder missing", {"storage", "--dir", kNowhere});
        bench("membw: threads -1", {"membw", "--threads", "-1"});
        bench("membw: mb 0", {"membw", "--mb", "0"});
        bench("model: no model", {"model"});
        bench("model: synthetic v9", {"model", "--synthetic", "v9"});
        bench("model: missing folder", {"model", "--model", kNowhere});
        bench("model: dtype x", {"model", "--model", kLite, "--dtype", "x"});
        bench("model: prompt 0", {"model", "--model", kLite, "--prompt", "0"});
        bench("model: layers 0", {"model", "--synthetic", "v2-lite", "--layers", "0"});
        bench("batch: sequences 0", {"batch", "--model", kLite, "--sequences", "0"});
        bench("batch: sequences x", {"batch", "--model", kLite, "--sequences", "x"});
        bench("batch: gen 1", {"batch", "--model", kLite, "--gen", "1"});
        bench("batch: K 99", {"batch", "--model", kLite, "--experts-per-token", "99", "--mb", "64", "--reps", "1"});
        bench("batch: virtual devices 99", {"batch", "--model", kLite, "--virtual-devices", "99", "--mb", "64", "--reps", "1"});
        bench("model: virtual devices x", {"model", "--model", kLite, "--virtual-devices", "x"});
        bench("kernels: tokens 0", {"kernels", "--tokens", "0"});
        bench("kernels: reps 0", {"kernels", "--reps", "0"});
        bench("kernels: threads 99999", {"kernels", "--threads", "99999"});
    }

    void bad_values()
    {
        QFETCH(QString, program);
        QFETCH(QStringList, args);
        QFETCH(QByteArray, input);
        const CliRun r = run_program(program, args, input, 60000);
        QVERIFY2(r.code != -1, qPrintable(program + " crashed or hung: " + r.err.right(400)));
        QVERIFY2(r.code >= 1 && r.code <= 127, qPrintable(QString("%1 exited %2: %3").arg(program).arg(r.code).arg(r.err.right(400))));
        QVERIFY2(!r.err.trimmed().isEmpty(), qPrintable(program + " failed without a message"));
    }
};

QTEST_GUILESS_MAIN(TestCliBadValues)
#include "test_cli_bad_values.moc"
