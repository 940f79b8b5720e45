// The shipped demo model (resources/demo-model) against the PyTorch model it was
// exported from (tools/train-demo/fixture.py wrote tests/fixtures/demo-model): the
// same logits, greedy continuation and routing in the reference goldens' layout,
// the same tokenizer ids, and the same validation perplexity through the engine
// and through `moelens-cli perplexity`.
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "moelens/chat_template.h"
#include "moelens/forward_trace.h"
#include "moelens/model.h"
#include "moelens/perplexity.h"
#include "moelens/safetensors.h"
#include "moelens/tokenizer.h"
#include "golden_compare.h"

using namespace moelens;
using namespace moelens::testing;
namespace fs = std::filesystem;

namespace {

const fs::path kModel = fs::path(MOELENS_RESOURCES_DIR) / "demo-model";
const fs::path kFixture = fs::path(MOELENS_FIXTURES_DIR) / "demo-model";

std::string read_file(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

class TestDemoModel : public QObject {
    Q_OBJECT

private slots:
    void logits_and_routing_match_pytorch_data()
    {
        QTest::addColumn<bool>("naive");
        QTest::newRow("absorbed") << false;
        QTest::newRow("naive") << true;
    }

    void logits_and_routing_match_pytorch()
    {
        QFETCH(bool, naive);
        const SafetensorsFile golden(kFixture / "golden.safetensors");
        auto model = load_model(kModel, LoadOptions{2, {}});
        const int vocab = model->config().vocab_size;
        const std::vector<int> tokens = as_int(golden.to_i64("tokens"));
        const std::vector<int> want_greedy = as_int(golden.to_i64("greedy_tokens"));
        const ForwardTrace tr = run_forward_trace(model, tokens, static_cast<int>(want_greedy.size()),
                                                  naive ? AttentionPath::naive : AttentionPath::absorbed);

        const std::vector<float> want = golden.to_f32("logits");
        QCOMPARE(tr.logits.size(), want.size());
        const double d = max_abs_diff(tr.logits, want).max_abs;
        qInfo("prefill max |logit diff| vs PyTorch %.3g", d);
        QVERIFY2(d <= 1e-3, qPrintable(QString("prefill logits differ by %1").arg(d)));
        for (std::size_t t = 0; t < tokens.size(); ++t)
            QCOMPARE(row_argmax(tr.logits, t, static_cast<std::size_t>(vocab)), row_argmax(want, t, static_cast<std::size_t>(vocab)));

        QCOMPARE(tr.greedy_tokens, want_greedy);
        const double g = max_abs_diff(tr.greedy_logits, golden.to_f32("greedy_logits")).max_abs;
        qInfo("greedy max |logit diff| vs PyTorch %.3g", g);
        QVERIFY2(g <= 1e-3, qPrintable(QString("greedy logits differ by %1").arg(g)));

        int layers = 0;
        for (const auto& [name, info] : golden.tensors()) {
            if (name.rfind("topk_idx.", 0) != 0) continue;
            ++layers;
            const int layer = std::stoi(name.substr(9));
            QVERIFY(tr.topk_idx.count(layer));
            QCOMPARE(tr.topk_idx.at(layer), as_int(golden.to_i64(name)));
            const double w = max_abs_diff(tr.topk_weight.at(layer), golden.to_f32("topk_weight." + std::to_string(layer))).max_abs;
            QVERIFY2(w <= 1e-4, qPrintable(QString("layer %1 routing weights differ by %2").arg(layer).arg(w)));
        }
        QCOMPARE(layers, static_cast<int>(tr.topk_idx.size()));
        QVERIFY(layers > 0);
    }

    // The ids the model was trained on are the ids the app's tokenizer produces.
    void tokenizer_matches_training_tokenizer()
    {
        const Tokenizer tok = Tokenizer::load(kModel.string());
        std::istringstream lines(read_file(kFixture / "tokenizer.jsonl"));
        std::string line;
        int n = 0;
        while (std::getline(lines, line)) {
            const auto j = nlohmann::json::parse(line);
            const std::vector<std::uint32_t> want = j["ids"].get<std::vector<std::uint32_t>>();
            QCOMPARE(tok.encode(j["text"].get<std::string>(), false), want);
            ++n;
        }
        QVERIFY(n >= 4);
    }

    // The chat template the training data used: <BOS>, then <｜User｜>question<｜Assistant｜>.
    void chat_template_renders_the_training_format()
    {
        const Tokenizer tok = Tokenizer::load(kModel.string());
        const std::string text =
            ChatTemplate::from_tokenizer(tok).render({{"user", "What is a list?"}}, /*add_generation_prompt=*/true);
        QCOMPARE(QString::fromStdString(text),
                 QString::fromUtf8("<｜begin▁of▁sentence｜><｜User｜>What is a list?<｜Assistant｜>"));
    }

    void perplexity_matches_pytorch()
    {
        const auto want = nlohmann::json::parse(read_file(kFixture / "perplexity.json"));
        const Tokenizer tok = Tokenizer::load(kModel.string());
        const std::vector<std::uint32_t> enc = tok.encode(read_file(kFixture / "val_excerpt.txt"), false);
        const std::vector<int> ids(enc.begin(), enc.end());
        auto model = load_model(kModel, LoadOptions{2, {}});
        const PerplexityResult r = perplexity(model, ids, model->config().bos_token_id, want["window"].get<int>());
        QCOMPARE(r.tokens, want["tokens"].get<long long>());
        QCOMPARE(r.windows, want["windows"].get<int>());
        qInfo("mean NLL %.6f, PyTorch %.6f", r.mean_nll, want["mean_nll"].get<double>());
        QVERIFY(std::abs(r.mean_nll - want["mean_nll"].get<double>()) <= 1e-3);
    }

    void cli_perplexity_reports_the_same()
    {
        QProcess p;
        p.start(QString(MOELENS_BIN_DIR) + "/moelens-cli",
                {"perplexity", "--model", QString::fromStdString(kModel.string()), "--text",
                 QString::fromStdString((kFixture / "val_excerpt.txt").string()), "--json", "--quiet"});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
        const QJsonObject out = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        const auto want = nlohmann::json::parse(read_file(kFixture / "perplexity.json"));
        QCOMPARE(out.value("tokens").toInteger(), want["tokens"].get<qint64>());
        QVERIFY(std::abs(out.value("mean_nll").toDouble() - want["mean_nll"].get<double>()) <= 1e-3);
        QVERIFY(std::abs(out.value("perplexity").toDouble() - want["perplexity"].get<double>()) <=
                1e-3 * want["perplexity"].get<double>());
    }

    void cli_perplexity_refuses_bad_input()
    {
        QProcess p;
        p.start(QString(MOELENS_BIN_DIR) + "/moelens-cli",
                {"perplexity", "--model", QString::fromStdString(kModel.string()), "--text", "/nonexistent/file.txt"});
        QVERIFY(p.waitForFinished(60000));
        QVERIFY(p.exitCode() != 0);
        QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains("/nonexistent/file.txt"));
    }
};

QTEST_GUILESS_MAIN(TestDemoModel)
#include "test_demo_model.moc"
