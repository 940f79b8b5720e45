// moelens-cli as other programs call it: forward writes the golden layout and
// matches the golden; errors give a non-zero exit and a message naming the file.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>

#include "cli_process.h"
#include "moelens/model.h"
#include "moelens/safetensors.h"
#include "moelens/session.h"

using namespace moelens;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(MOELENS_FIXTURES_DIR) / "golden";

using moelens::test::CliRun;
using moelens::test::run_cli;

// The "ids" array of a `moelens-cli tokenize` output line, as a --tokens list.
QString ids_of(const QString& jsonLine)
{
    const QJsonArray ids = QJsonDocument::fromJson(jsonLine.trimmed().toUtf8()).object().value("ids").toArray();
    QStringList out;
    for (const QJsonValue& v : ids) out << QString::number(v.toInt());
    return out.join(',');
}

QString join(const std::vector<std::int64_t>& v)
{
    QStringList s;
    for (auto x : v) s << QString::number(x);
    return s.join(',');
}

double max_abs(const std::vector<float>& a, const std::vector<float>& b)
{
    if (a.size() != b.size()) return INFINITY;
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
    return m;
}

}  // namespace

class TestEngineCli : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;

private slots:
    void forward_matches_golden_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::addColumn<QString>("attention");
        QTest::newRow("v2 absorbed") << "v2" << "absorbed";
        QTest::newRow("lite naive") << "lite" << "naive";
    }
    void forward_matches_golden()
    {
        QFETCH(QString, variant);
        QFETCH(QString, attention);
        const fs::path dir = kGolden / variant.toStdString();
        const SafetensorsFile golden(dir / "golden.safetensors");
        const auto out = m_tmp.filePath(variant + ".safetensors");
        const CliRun r = run_cli({"forward", "--model", QString::fromStdString(dir.string()), "--tokens",
                               join(golden.to_i64("tokens")), "--greedy",
                               QString::number(golden.at("greedy_tokens").numel()), "--attention", attention,
                               "--threads", "2", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));

        const SafetensorsFile got(out.toStdString());
        // Exactly the golden layout: same names, dtypes and shapes.
        QCOMPARE(got.tensors().size(), golden.tensors().size());
        for (const auto& [name, t] : golden.tensors()) {
            const TensorInfo* g = got.find(name);
            QVERIFY2(g, name.c_str());
            QCOMPARE(g->dtype, t.dtype);
            QCOMPARE(g->shape, t.shape);
        }
        QCOMPARE(got.to_i64("tokens"), golden.to_i64("tokens"));
        QCOMPARE(got.to_i64("greedy_tokens"), golden.to_i64("greedy_tokens"));
        QVERIFY(max_abs(got.to_f32("logits"), golden.to_f32("logits")) <= 1e-3);
        QVERIFY(max_abs(got.to_f32("greedy_logits"), golden.to_f32("greedy_logits")) <= 1e-3);
        for (const auto& [name, t] : golden.tensors())
            if (name.rfind("topk_idx.", 0) == 0) QCOMPARE(got.to_i64(name), golden.to_i64(name));
    }

    void errors_exit_non_zero()
    {
        const CliRun missing = run_cli({"forward", "--model", m_tmp.filePath("nope"), "--tokens", "1,2", "--out", m_tmp.filePath("x.safetensors")});
        QCOMPARE(missing.code, 1);
        QVERIFY2(missing.err.contains(m_tmp.filePath("nope/config.json")), qPrintable(missing.err));

        const QString lite = QString::fromStdString((kGolden / "lite").string());
        const CliRun bad_token = run_cli({"forward", "--model", lite, "--tokens", "1,99999", "--out", m_tmp.filePath("x.safetensors")});
        QCOMPARE(bad_token.code, 1);
        QVERIFY2(bad_token.err.contains("99999"), qPrintable(bad_token.err));

        const CliRun usage = run_cli({"forward", "--model", lite, "--tokens", "1,x", "--out", m_tmp.filePath("x.safetensors")});
        QCOMPARE(usage.code, 2);
        QVERIFY2(usage.err.contains("'x'"), qPrintable(usage.err));

        // generate: an id equal to the vocabulary size, and one far outside it, are
        // refused with the id and the size named (once a segmentation fault).
        const int vocab = moelens::parse_model_config(kGolden / "lite" / "config.json").vocab_size;
        for (const QString& id : {QString::number(vocab), QString("2000000000")}) {
            const CliRun gen = run_cli({"generate", "--model", lite, "--tokens", "1," + id, "--max-new-tokens", "2"});
            QCOMPARE(gen.code, 1);
            QVERIFY2(gen.err.contains("token id " + id) && gen.err.contains(QString("vocab_size %1").arg(vocab)), qPrintable(gen.err));
        }
    }

    // generate --experts-per-token / --device-limit / --disable-experts: the model's
    // own values change nothing, others give what the engine gives with them, and
    // values the model cannot take exit 2 naming the value and its limit.
    void generate_moe_settings()
    {
        const QString v2 = QString::fromStdString((kGolden / "v2").string());
        const QStringList base{"generate", "--model", v2, "--tokens", "0,5,6,7,8", "--greedy", "--ignore-eos", "--max-new-tokens", "8"};
        const CliRun plain = run_cli(base);
        QVERIFY2(plain.code == 0, qPrintable(plain.err));
        const CliRun same = run_cli(base + QStringList{"--experts-per-token", "3", "--device-limit", "2"});
        QCOMPARE(same.out, plain.out);

        const CliRun what_if = run_cli(base + QStringList{"--experts-per-token", "1", "--device-limit", "1", "--disable-experts", "1:3,3:0", "--stats"});
        QVERIFY2(what_if.code == 0, qPrintable(what_if.err));
        QVERIFY2(what_if.err.contains("routing: 1 of 16 experts, M = 1, e3 off in layer 1, e0 off in layer 3"), qPrintable(what_if.err));
        SessionOptions o;
        o.moe = MoeSettings{1, 1, {{1, 3}, {3, 0}}};
        Session session(load_model(kGolden / "v2", LoadOptions{1, {}}), o);
        SamplingParams p = SamplingParams::greedy();
        p.max_new_tokens = 8;
        p.stop_at_eos = false;
        QStringList want;
        for (int t : session.generate(std::vector<int>{0, 5, 6, 7, 8}, p).tokens) want << QString::number(t);
        QCOMPARE(what_if.out.trimmed(), want.join(' '));
        QVERIFY(what_if.out != plain.out);

        const std::pair<QStringList, QString> bad[] = {
            {{"--experts-per-token", "17"}, "experts per token 17 is outside 1..16"},
            {{"--experts-per-token", "0"}, "--experts-per-token must be at least 1"},
            {{"--device-limit", "5"}, "device limit 5 is outside 1..4"},
            {{"--disable-experts", "0:1"}, "layer 0 is not a MoE layer"},
            {{"--disable-experts", "1:16"}, "expert ids are 0..15"},
            {{"--disable-experts", "1;2"}, "'1;2' is not LAYER:EXPERT"},
        };
        for (const auto& [flags, message] : bad) {
            const CliRun r = run_cli(base + flags);
            QCOMPARE(r.code, 2);
            QVERIFY2(r.err.contains(message), qPrintable(r.err));
        }
    }

    void info_make_demo_generate()
    {
        const CliRun info = run_cli({"info", "--model", QString::fromStdString((kGolden / "v2").string())});
        QCOMPARE(info.code, 0);
        QVERIFY(info.out.contains("group_limited_greedy (4 groups, keep 2)"));
        QVERIFY(info.out.contains("active per token"));
        QVERIFY(info.out.contains("latent 768 bytes vs multi-head 3072 bytes"));

        const QString demo = m_tmp.filePath("demo");
        const CliRun make = run_cli({"make-demo", demo, "--tokenizer", QString(MOELENS_RESOURCES_DIR) + "/tokenizer"});
        QVERIFY2(make.code == 0, qPrintable(make.err));
        const CliRun demo_info = run_cli({"info", "--model", demo});
        QVERIFY(demo_info.out.contains("demo model: random weights"));

        const CliRun gen = run_cli({"generate", "--model", demo, "--tokens", "0,300,301", "--max-new-tokens", "10", "--seed", "4",
                                 "--ignore-eos", "--stats"});
        QVERIFY2(gen.code == 0, qPrintable(gen.err));
        QCOMPARE(gen.out.trimmed().split(' ').size(), 10);
        QVERIFY(gen.err.contains("stop: max_new_tokens"));
        const CliRun again = run_cli({"generate", "--model", demo, "--tokens", "0,300,301", "--max-new-tokens", "10", "--seed", "4", "--ignore-eos"});
        QCOMPARE(again.out, gen.out);
    }

    // generate --prompt (and --chat) must feed exactly the ids the tokenizer and the
    // chat template give, and print exactly what detokenize makes of the result.
    void generate_text_prompt_matches_token_pipeline_data()
    {
        QTest::addColumn<bool>("chat");
        QTest::newRow("plain") << false;
        QTest::newRow("chat") << true;
    }

    void generate_text_prompt_matches_token_pipeline()
    {
        QFETCH(bool, chat);
        const QString demo = m_tmp.filePath("demo-text");
        QCOMPARE(run_cli({"make-demo", demo, "--tokenizer", QString(MOELENS_RESOURCES_DIR) + "/tokenizer"}).code, 0);
        const QString text = QStringLiteral("Hello, what is a mixture of experts? 你好");

        QString prompt_ids;
        if (chat) {
            QJsonObject msg{{"role", "user"}, {"content", text}};
            QJsonObject req{{"messages", QJsonArray{msg}}, {"add_generation_prompt", true}};
            const CliRun rendered = run_cli({"chat-template", "--model", demo}, QJsonDocument(req).toJson(QJsonDocument::Compact) + "\n");
            QVERIFY2(rendered.code == 0, qPrintable(rendered.err));
            const QJsonObject line{{"text", rendered.out}};
            const CliRun tok = run_cli({"tokenize", "--tokenizer", demo}, QJsonDocument(line).toJson(QJsonDocument::Compact) + "\n");
            QVERIFY2(tok.code == 0, qPrintable(tok.err));
            prompt_ids = ids_of(tok.out);
        } else {
            const QJsonObject line{{"text", text}};
            const CliRun tok = run_cli({"tokenize", "--tokenizer", demo, "--bos"}, QJsonDocument(line).toJson(QJsonDocument::Compact) + "\n");
            QVERIFY2(tok.code == 0, qPrintable(tok.err));
            prompt_ids = ids_of(tok.out);
        }
        QVERIFY(prompt_ids.startsWith("0,"));

        const QStringList common{"--model", demo, "--greedy", "--ignore-eos", "--max-new-tokens", "12"};
        const CliRun by_ids = run_cli(QStringList{"generate", "--tokens", prompt_ids} + common);
        QVERIFY2(by_ids.code == 0, qPrintable(by_ids.err));
        QJsonArray generated;
        for (const QString& id : by_ids.out.trimmed().split(' ')) generated.append(id.toInt());
        const CliRun detok = run_cli({"detokenize", "--tokenizer", demo, "--skip-special"},
                                        QJsonDocument(QJsonObject{{"ids", generated}}).toJson(QJsonDocument::Compact) + "\n");
        QVERIFY2(detok.code == 0, qPrintable(detok.err));
        const QString expected = QJsonDocument::fromJson(detok.out.trimmed().toUtf8()).object().value("text").toString();

        QStringList text_args{"generate", "--prompt", text};
        if (chat) text_args << "--chat";
        const CliRun by_text = run_cli(text_args + common);
        QVERIFY2(by_text.code == 0, qPrintable(by_text.err));
        QCOMPARE(by_text.out, expected + "\n");
    }
};

QTEST_GUILESS_MAIN(TestEngineCli)
#include "test_engine_cli.moc"
