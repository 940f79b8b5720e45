#pragma once
#include <filesystem>

#include "model/weights.h"
#include "moelens/model.h"

namespace moelens {

// The summary of a validated checkpoint.
ModelInfo make_model_info(const std::filesystem::path& dir, const ModelConfig& c, const Checkpoint& ckpt);

}  // namespace moelens
