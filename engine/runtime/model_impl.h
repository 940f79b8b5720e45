#pragma once
// What a loaded Model holds: its config, the mapped checkpoint, the bound weights,
// the backend that runs them and the per-model constants of the forward step.
#include <memory>

#include "backend/backend.h"
#include "device/device_model.h"
#include "model/quantized_weights.h"
#include "model/resident_weights.h"
#include "model/rope_table.h"
#include "model/weights.h"
#include "moelens/model.h"

namespace moelens {

class ModelImpl {
public:
    ModelConfig config;
    ModelInfo info;
    std::unique_ptr<Checkpoint> checkpoint;  // owns the mappings the views point into
    std::unique_ptr<QuantizedWeights> quantized;  // int8 weights (WeightsFormat::int8), else null
    std::unique_ptr<ResidentWeights> resident;    // stored-dtype copies in large pages (WeightsMemory), else null
    ModelWeights weights;
    std::unique_ptr<Backend> backend;        // shared by all sessions of this model
    std::unique_ptr<DeviceModel> device;     // the model on a GPU (--device cuda), else null
    RopeFrequencies rope;
    RouteParams route;
    MlaDims mla;
    unsigned threads = 1;
};

}  // namespace moelens
