#pragma once
// The CUDA plugin's function table, for the engine's device model
// (device/device_model.cpp). Null unless probe_devices() loaded a plugin of the
// engine's ABI version and at least one GPU answered.
#include "backend/cuda_plugin_abi.h"

namespace moelens {

const MoelensCudaPlugin* cuda_plugin();

}  // namespace moelens
