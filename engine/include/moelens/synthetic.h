#pragma once
// Random-weight checkpoints with the real shapes of a published model, for
// benchmarking (moelens-bench model --synthetic): speed depends on shapes and
// dtypes, not on trained values. Written straight to disk tensor by tensor, so
// a checkpoint larger than memory can be made.
#include <cstdint>
#include <filesystem>
#include <string>

#include "moelens/model.h"
#include "moelens/safetensors.h"

namespace moelens {

struct SyntheticModelSpec {
    std::string preset = "v2-lite";  // the only preset: DeepSeek-V2-Lite's config.json
    int layers = 6;                  // decoder layers (the first is dense, the rest MoE); 27 = the real model
    DType dtype = DType::BF16;       // BF16, F16 or F32
    std::uint64_t seed = 1;
};

// The configuration of the spec (throws ModelError for an unknown preset, a
// layer count < 1 or an unsupported dtype).
ModelConfig synthetic_model_config(const SyntheticModelSpec& spec);

// Writes config.json and model.safetensors into `dir` (created if needed). The
// safetensors file is written under a temporary name and renamed when complete,
// so an interrupted run never leaves a checkpoint that looks whole.
void write_synthetic_model(const std::filesystem::path& dir, const SyntheticModelSpec& spec);

// True when `dir` holds a complete checkpoint written for `spec` (its metadata
// records the spec).
bool synthetic_model_present(const std::filesystem::path& dir, const SyntheticModelSpec& spec);

}  // namespace moelens
