// Hostile and broken inputs: every one must give a ModelError that names the file
// and what is wrong, and none may crash.
#include <QTemporaryDir>
#include <QTest>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "moelens/error.h"
#include "moelens/model.h"
#include "moelens/safetensors.h"

using namespace moelens;
namespace fs = std::filesystem;

namespace {

const fs::path kLite = fs::path(MOELENS_FIXTURES_DIR) / "golden" / "lite";

void write_bytes(const fs::path& p, const std::string& bytes)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file with the given header text and `data_bytes` zero bytes of data.
std::string raw_safetensors(const std::string& header, std::size_t data_bytes, std::uint64_t claimed_len = 0)
{
    const std::uint64_t len = claimed_len ? claimed_len : header.size();
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    return out + header + std::string(data_bytes, '\0');
}

// Runs `f`, expecting a ModelError whose message contains every one of `needles`.
template <class F>
void expect_model_error(F&& f, std::initializer_list<std::string> needles)
{
    try {
        f();
    } catch (const ModelError& e) {
        const std::string msg = e.what();
        for (const auto& n : needles)
            if (msg.find(n) == std::string::npos)
                QFAIL(qPrintable(QString("message \"%1\" does not mention \"%2\"").arg(msg.c_str(), n.c_str())));
        return;
    } catch (const std::exception& e) {
        QFAIL(qPrintable(QString("expected ModelError, got: %1").arg(e.what())));
    }
    QFAIL("no error thrown");
}

nlohmann::json lite_config()
{
    std::ifstream in(kLite / "config.json");
    return nlohmann::json::parse(in);
}

// Copies the lite model into `dir`, letting `edit` change the tensor list first.
template <class Edit>
void write_lite_variant(const fs::path& dir, Edit&& edit)
{
    fs::create_directories(dir);
    fs::copy_file(kLite / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
    const SafetensorsFile src(kLite / "model.safetensors");
    std::vector<TensorToWrite> tensors;
    for (const auto& [name, t] : src.tensors()) {
        TensorToWrite w{name, t.dtype, t.shape, {}};
        w.bytes.assign(src.data(t), src.data(t) + t.nbytes);
        tensors.push_back(std::move(w));
    }
    edit(tensors);
    write_safetensors(dir / "model.safetensors", tensors);
}

}  // namespace

class TestEngineMalformed : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    fs::path path(const char* name) const { return fs::path(m_tmp.path().toStdString()) / name; }

private slots:
    void safetensors_truncated_header_length()
    {
        const auto p = path("short.safetensors");
        write_bytes(p, std::string("\x10\x00\x00", 3));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "truncated"});
    }

    void safetensors_header_length_past_end()
    {
        const auto p = path("long_header.safetensors");
        write_bytes(p, raw_safetensors("{}", 0, 4096));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "header length 4096", "past the end"});
    }

    void safetensors_header_not_json()
    {
        const auto p = path("bad_json.safetensors");
        write_bytes(p, raw_safetensors("{\"a\": [1, 2", 0));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "not valid JSON"});
    }

    void safetensors_offsets_out_of_range()
    {
        const auto p = path("range.safetensors");
        write_bytes(p, raw_safetensors(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "past the end of the data"});
    }

    void safetensors_offsets_overlap()
    {
        const auto p = path("overlap.safetensors");
        write_bytes(p, raw_safetensors(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 16));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "'a'", "'b'", "overlap"});
    }

    void safetensors_offsets_reversed()
    {
        const auto p = path("reversed.safetensors");
        write_bytes(p, raw_safetensors(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 16));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "'a'", "reversed"});
    }

    void safetensors_dtype_shape_mismatch()
    {
        const auto p = path("size.safetensors");
        write_bytes(p, raw_safetensors(R"({"w": {"dtype": "BF16", "shape": [3, 3], "data_offsets": [0, 16]}})", 16));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "needs 18 bytes", "span 16"});
    }

    void safetensors_unknown_dtype_and_bad_shape()
    {
        const auto p = path("dtype.safetensors");
        write_bytes(p, raw_safetensors(R"({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", 4));
        expect_model_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "unsupported dtype F8_E4M3"});
        const auto q = path("shape.safetensors");
        write_bytes(q, raw_safetensors(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4));
        expect_model_error([&] { SafetensorsFile f(q); }, {q.string(), "'w'", "shape entry -1"});
        const auto r = path("huge.safetensors");
        write_bytes(r, raw_safetensors(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4));
        expect_model_error([&] { SafetensorsFile f(r); }, {r.string(), "'w'", "too large"});
    }

    void safetensors_truncated_real_file()
    {
        const auto dir = path("truncated_model");
        fs::create_directories(dir);
        fs::copy_file(kLite / "config.json", dir / "config.json");
        std::ifstream in(kLite / "model.safetensors", std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        write_bytes(dir / "model.safetensors", bytes.substr(0, bytes.size() / 2));
        expect_model_error([&] { load_model(dir, LoadOptions{1, {}}); },
                           {(dir / "model.safetensors").string(), "past the end of the data"});
    }

    void missing_tensor()
    {
        const auto dir = path("missing_tensor");
        write_lite_variant(dir, [](std::vector<TensorToWrite>& t) {
            std::erase_if(t, [](const TensorToWrite& w) { return w.name == "model.layers.2.mlp.experts.5.up_proj.weight"; });
        });
        expect_model_error([&] { load_model(dir, LoadOptions{1, {}}); },
                           {(dir / "model.safetensors").string(), "missing tensor 'model.layers.2.mlp.experts.5.up_proj.weight'"});
        expect_model_error([&] { inspect_model(dir); }, {"model.layers.2.mlp.experts.5.up_proj.weight"});
    }

    void wrong_shape()
    {
        const auto dir = path("wrong_shape");
        write_lite_variant(dir, [](std::vector<TensorToWrite>& t) {
            for (auto& w : t)
                if (w.name == "model.layers.1.self_attn.kv_b_proj.weight") w.shape = {w.shape[1], w.shape[0]};
        });
        expect_model_error([&] { load_model(dir, LoadOptions{1, {}}); },
                           {(dir / "model.safetensors").string(), "model.layers.1.self_attn.kv_b_proj.weight",
                            "shape [32, 128], expected [128, 32]"});
    }

    void wrong_dtype()
    {
        const auto dir = path("wrong_dtype");
        write_lite_variant(dir, [](std::vector<TensorToWrite>& t) {
            for (auto& w : t)
                if (w.name == "model.norm.weight") {
                    w.dtype = DType::I32;
                    w.shape = {w.shape[0] / 2};
                }
        });
        expect_model_error([&] { load_model(dir, LoadOptions{1, {}}); },
                           {"model.norm.weight", "dtype I32, expected BF16, F16 or F32"});
    }

    void no_weights_file()
    {
        const auto dir = path("no_weights");
        fs::create_directories(dir);
        fs::copy_file(kLite / "config.json", dir / "config.json");
        expect_model_error([&] { inspect_model(dir); }, {dir.string(), "no model.safetensors"});
    }

    // The lite model split over two shards with an index loads, and gives the same
    // logits as the single file; a broken index is reported by name.
    void sharded_checkpoint()
    {
        const auto dir = path("sharded");
        fs::create_directories(dir);
        fs::copy_file(kLite / "config.json", dir / "config.json");
        const SafetensorsFile src(kLite / "model.safetensors");
        std::vector<TensorToWrite> shard[2];
        nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
        int i = 0;
        for (const auto& [name, t] : src.tensors()) {
            TensorToWrite w{name, t.dtype, t.shape, {}};
            w.bytes.assign(src.data(t), src.data(t) + t.nbytes);
            const int s = i++ % 2;
            index["weight_map"][name] = s == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
            shard[s].push_back(std::move(w));
        }
        write_safetensors(dir / "model-00001-of-00002.safetensors", shard[0]);
        write_safetensors(dir / "model-00002-of-00002.safetensors", shard[1]);
        write_bytes(dir / "model.safetensors.index.json", index.dump());
        const ModelInfo info = inspect_model(dir);
        QCOMPARE(info.weight_files.size(), std::size_t(2));
        QCOMPARE(info.total_params, inspect_model(kLite).total_params);
        QVERIFY(load_model(dir, LoadOptions{1, {}}));

        index["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
        write_bytes(dir / "model.safetensors.index.json", index.dump());
        expect_model_error([&] { inspect_model(dir); }, {"model-00003-of-00002.safetensors", "cannot open"});
        index["weight_map"]["model.norm.weight"] = "../outside.safetensors";
        write_bytes(dir / "model.safetensors.index.json", index.dump());
        expect_model_error([&] { inspect_model(dir); }, {"model.safetensors.index.json", "outside the folder"});
        index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
        index["weight_map"]["model.extra.weight"] = "model-00002-of-00002.safetensors";
        write_bytes(dir / "model.safetensors.index.json", index.dump());
        expect_model_error([&] { inspect_model(dir); }, {"model-0000", "missing tensor"});
    }

    // Random damage to a real header: either a ModelError or a file whose every
    // tensor can be read within bounds; never a crash (run under ASan in CI).
    void safetensors_mutated_headers()
    {
        std::ifstream in(kLite / "golden.safetensors", std::ios::binary);
        const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::uint64_t header_len = 0;
        for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(good[i]);
        const auto p = path("mutated.safetensors");
        std::uint64_t state = 12345;
        auto next = [&] {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            return state >> 33;
        };
        const char alphabet[] = "0123456789,:[]{}\"-e. ";
        int rejected = 0;
        for (int trial = 0; trial < 300; ++trial) {
            std::string bad = good;
            const int edits = 1 + static_cast<int>(next() % 4);
            for (int e = 0; e < edits; ++e) {
                const std::size_t at = 8 + next() % header_len;
                bad[at] = alphabet[next() % (sizeof(alphabet) - 1)];
            }
            if (trial % 10 == 0) bad.resize(next() % bad.size());
            write_bytes(p, bad);
            try {
                SafetensorsFile f(p);
                for (const auto& [name, t] : f.tensors()) {
                    if (t.dtype == DType::I32 || t.dtype == DType::I64)
                        f.to_i64(name);
                    else if (t.dtype != DType::U8)
                        f.to_f32(name);
                }
            } catch (const ModelError& e) {
                ++rejected;
                QVERIFY2(std::string(e.what()).find(p.string()) != std::string::npos, e.what());
            }
        }
        QVERIFY(rejected > 100);
    }

    void config_errors_data()
    {
        QTest::addColumn<QString>("patch");   // JSON merge-patch applied to the lite config (null removes a key)
        QTest::addColumn<QString>("needle");  // the message must name this
        QTest::newRow("missing key") << R"({"hidden_size": null})" << "key 'hidden_size' is missing";
        QTest::newRow("wrong type") << R"({"hidden_size": "96"})" << "key 'hidden_size' must be an integer, found \"96\"";
        QTest::newRow("model_type") << R"({"model_type": "llama"})" << "key 'model_type' is 'llama'";
        QTest::newRow("topk_method") << R"({"topk_method": "noaux_tc"})" << "key 'topk_method' is 'noaux_tc'";
        QTest::newRow("scoring_func") << R"({"scoring_func": "sigmoid"})" << "key 'scoring_func' is 'sigmoid'";
        QTest::newRow("rope type") << R"({"rope_scaling": {"type": "linear", "factor": 2}})" << "key 'rope_scaling.type' is 'linear'";
        QTest::newRow("yarn without factor") << R"({"rope_scaling": {"type": "yarn", "original_max_position_embeddings": 16}})" << "key 'factor' is missing";
        QTest::newRow("top-k > experts") << R"({"num_experts_per_tok": 9})" << "key 'num_experts_per_tok' is 9, more than n_routed_experts 8";
        QTest::newRow("groups do not divide") << R"({"topk_method": "group_limited_greedy", "n_group": 3, "topk_group": 2})" << "key 'n_group' is 3";
        QTest::newRow("topk_group > n_group") << R"({"topk_method": "group_limited_greedy", "n_group": 2, "topk_group": 4})" << "key 'topk_group' is 4, more than n_group 2";
        QTest::newRow("kv heads") << R"({"num_key_value_heads": 1})" << "key 'num_key_value_heads' is 1";
        QTest::newRow("odd rope dim") << R"({"qk_rope_head_dim": 7})" << "key 'qk_rope_head_dim' must be even";
        QTest::newRow("negative") << R"({"kv_lora_rank": -4})" << "key 'kv_lora_rank' has out-of-range value -4";
        QTest::newRow("zero heads") << R"({"num_attention_heads": 0, "num_key_value_heads": null})" << "key 'num_attention_heads' must be positive";
        QTest::newRow("eos outside vocab") << R"({"eos_token_id": 5000})" << "key 'eos_token_id' is 5000, outside vocab_size 768";
        QTest::newRow("hidden_act") << R"({"hidden_act": "gelu"})" << "key 'hidden_act' is 'gelu'";
        QTest::newRow("bias") << R"({"attention_bias": true})" << "key 'attention_bias' is true";
    }
    void config_errors()
    {
        QFETCH(QString, patch);
        QFETCH(QString, needle);
        nlohmann::json cfg = lite_config();
        cfg.merge_patch(nlohmann::json::parse(patch.toStdString()));
        const auto dir = path("config_case");
        fs::create_directories(dir);
        write_bytes(dir / "config.json", cfg.dump());
        expect_model_error([&] { parse_model_config(dir / "config.json"); }, {(dir / "config.json").string(), needle.toStdString()});
    }

    // The released configs (deepseek-ai/DeepSeek-V2-Lite and DeepSeek-V2 on Hugging
    // Face, trimmed of auto_map) are accepted and read as published.
    void released_configs_parse()
    {
        const char* lite = R"({"architectures": ["DeepseekV2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
            "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001, "first_k_dense_replace": 1,
            "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 10944,
            "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v2",
            "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64,
            "n_shared_experts": 2, "norm_topk_prob": false, "num_attention_heads": 16, "num_experts_per_tok": 6,
            "num_hidden_layers": 27, "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": null,
            "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
            "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                             "original_max_position_embeddings": 4096, "type": "yarn"},
            "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": true,
            "tie_word_embeddings": false, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
            "transformers_version": "4.33.1", "use_cache": true, "v_head_dim": 128, "vocab_size": 102400})";
        const ModelConfig c = parse_model_config_text(lite, "V2-Lite config.json");
        QCOMPARE(c.q_lora_rank, 0);
        QCOMPARE(c.num_hidden_layers, 27);
        QVERIFY(!c.is_moe_layer(0) && c.is_moe_layer(1) && c.is_moe_layer(26));
        QCOMPARE(c.yarn.factor, 40.0);
        QCOMPARE(c.eos_token_ids, std::vector<int>{100001});

        nlohmann::json v2 = nlohmann::json::parse(lite);
        v2.merge_patch(nlohmann::json::parse(R"({"hidden_size": 5120, "intermediate_size": 12288, "moe_intermediate_size": 1536,
            "n_group": 8, "n_routed_experts": 160, "num_attention_heads": 128, "num_hidden_layers": 60,
            "num_key_value_heads": 128, "q_lora_rank": 1536, "routed_scaling_factor": 16.0, "topk_group": 3,
            "topk_method": "group_limited_greedy"})"));
        const ModelConfig big = parse_model_config_text(v2.dump(), "V2 config.json");
        QCOMPARE(big.topk_method, TopkMethod::group_limited_greedy);
        QCOMPARE(big.q_lora_rank, 1536);
        QCOMPARE(big.n_group, 8);
    }

    void config_missing_or_not_json()
    {
        const auto dir = path("config_missing");
        fs::create_directories(dir);
        expect_model_error([&] { inspect_model(dir); }, {(dir / "config.json").string(), "cannot open"});
        write_bytes(dir / "config.json", "{\"model_type\": ");
        expect_model_error([&] { inspect_model(dir); }, {(dir / "config.json").string(), "not valid JSON"});
        write_bytes(dir / "config.json", "[1, 2]");
        expect_model_error([&] { inspect_model(dir); }, {(dir / "config.json").string(), "expected a JSON object"});
    }
};

QTEST_GUILESS_MAIN(TestEngineMalformed)
#include "test_engine_malformed.moc"
