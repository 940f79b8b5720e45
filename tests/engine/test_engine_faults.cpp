// Bad days for a loaded model: its weight file cut short on disk while mapped
// (SIGBUS without engine/util/mapping_guard.h), its folder removed, its file
// replaced. Each ends in a clear message or goes on unharmed; the process lives.
#include <QTemporaryDir>
#include <QTest>

#include <filesystem>
#include <fstream>

#include "moelens/error.h"
#include "moelens/scheduler.h"
#include "moelens/session.h"

using namespace moelens;
namespace fs = std::filesystem;

namespace {

const fs::path kLite = fs::path(MOELENS_FIXTURES_DIR) / "golden" / "lite";

std::shared_ptr<const Model> load_mapped(const fs::path& dir)
{
    LoadOptions o{1, {}};
    o.memory = WeightsMemory::mapped;  // every matrix read through the file mapping
    return load_model(dir, o);
}

GenerationResult greedy(const std::shared_ptr<const Model>& model, int n)
{
    Scheduler s(model);
    GenerationRequest r;
    r.prompt = {0, 462, 140, 231};
    r.sampling = SamplingParams::greedy();
    r.sampling.max_new_tokens = n;
    r.sampling.stop_at_eos = false;
    GenerationResult out;
    r.on_finish = [&](SequenceId, const GenerationResult& g) { out = g; };
    s.submit(std::move(r));
    s.run();
    return out;
}

}  // namespace

class TestEngineFaults : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;

    fs::path copy_lite(const char* name)
    {
        const fs::path dir = fs::path(m_tmp.path().toStdString()) / name;
        fs::create_directories(dir);
        fs::copy_file(kLite / "config.json", dir / "config.json");
        fs::copy_file(kLite / "model.safetensors", dir / "model.safetensors");
        return dir;
    }

private slots:
    // Truncated in place after loading: reads past the new end see zeros instead
    // of ending the process, and the step that read them fails naming the file.
    void weights_cut_short_while_loaded()
    {
        const fs::path dir = copy_lite("cut");
        auto model = load_mapped(dir);
        const GenerationResult before = greedy(model, 4);
        QCOMPARE(before.reason, StopReason::max_new_tokens);

        fs::resize_file(dir / "model.safetensors", 4096);  // the header's first page stays, the tensors go

        const GenerationResult after = greedy(model, 4);
        QCOMPARE(after.reason, StopReason::error);
        QVERIFY2(after.error.find((dir / "model.safetensors").string()) != std::string::npos, after.error.c_str());
        QVERIFY2(after.error.find("cut short on disk") != std::string::npos, after.error.c_str());
        // Every later step says so too (the zeros stay until the model is loaded again).
        QCOMPARE(greedy(model, 2).reason, StopReason::error);
        Session session(model);
        QVERIFY_THROWS_EXCEPTION(ModelError, session.prefill(std::vector<int>{0, 5, 6}));
        // Loading it again is refused up front, naming the file.
        try {
            load_mapped(dir);
            QFAIL("a truncated file loaded");
        } catch (const ModelError& e) {
            QVERIFY2(std::string(e.what()).find("model.safetensors") != std::string::npos, e.what());
        }
    }

    // Removed while loaded: the mappings keep the files; only a new load fails.
    void folder_removed_while_loaded()
    {
        const fs::path dir = copy_lite("removed");
        auto model = load_mapped(dir);
        const GenerationResult before = greedy(model, 6);
        fs::remove_all(dir);
        const GenerationResult after = greedy(model, 6);
        QCOMPARE(after.reason, StopReason::max_new_tokens);
        QCOMPARE(after.tokens, before.tokens);
        try {
            load_mapped(dir);
            QFAIL("a removed folder loaded");
        } catch (const ModelError& e) {
            QVERIFY2(std::string(e.what()).find((dir / "config.json").string()) != std::string::npos, e.what());
        }
    }

    // Replaced by renaming another file over it (as downloaders and cp --remove-destination do).
    void file_replaced_while_loaded()
    {
        const fs::path dir = copy_lite("replaced");
        auto model = load_mapped(dir);
        const GenerationResult before = greedy(model, 6);
        {
            std::ofstream junk(dir / "new.safetensors", std::ios::binary);
            junk << std::string(100, 'x');
        }
        fs::rename(dir / "new.safetensors", dir / "model.safetensors");
        QCOMPARE(greedy(model, 6).tokens, before.tokens);
    }
};

QTEST_GUILESS_MAIN(TestEngineFaults)
#include "test_engine_faults.moc"
