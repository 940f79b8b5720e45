#pragma once
// The built-in demo model: a small random-weight checkpoint in the real Hugging
// Face DeepSeek-V2-Lite layout and key set, using the real DeepSeek tokenizer, so
// the application works before any real weights are downloaded.
#include <cstdint>
#include <filesystem>

#include "moelens/model.h"

namespace moelens {

struct DemoModelSpec {
    std::uint64_t seed = 42;
    // Folder holding tokenizer.json and tokenizer_config.json (copied into `dir`).
    std::filesystem::path tokenizer_dir;
};

// Writes config.json ("moelens_demo": true), model.safetensors (BF16) and the
// tokenizer files into `dir` (created if needed). Same seed = same bytes.
// Throws ModelError on I/O errors or a missing tokenizer folder.
void write_demo_model(const std::filesystem::path& dir, const DemoModelSpec& spec);

// The demo configuration itself (vocab 128815 covers every DeepSeek tokenizer id).
ModelConfig demo_model_config();

}  // namespace moelens
