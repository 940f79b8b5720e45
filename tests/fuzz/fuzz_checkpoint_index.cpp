// model.safetensors.index.json of a sharded checkpoint: its weight_map names the
// shard of every tensor. The folder holds one real shard (the lite golden's
// weights, as "model-00001-of-00002.safetensors"); the index may name it,
// names that do not exist, or names outside the folder. What the index accepts
// is then bound against the lite config's expected tensors and shapes.
#include <filesystem>

#include "fuzz_support.h"
#include "model/weights.h"
#include "moelens/error.h"

namespace {

const std::filesystem::path& folder()
{
    static const std::filesystem::path dir = [] {
        const auto d = moelens::fuzz::scratch_dir() / "sharded";
        std::filesystem::create_directories(d);
        std::filesystem::copy_file(std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden/lite/model.safetensors",
                                   d / "model-00001-of-00002.safetensors", std::filesystem::copy_options::overwrite_existing);
        return d;
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static const moelens::ModelConfig config =
        moelens::parse_model_config(std::filesystem::path(MOELENS_FIXTURES_DIR) / "golden/lite/config.json");
    moelens::fuzz::write_file(folder() / "model.safetensors.index.json", data, size);
    try {
        const moelens::Checkpoint ckpt(folder());
        moelens::check_weights(config, ckpt);
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
