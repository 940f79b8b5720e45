// config.json: every key that changes the math is parsed and cross-checked
// (engine/model/config.cpp). Whatever it accepts must also describe a model the
// rest of the engine can size: its summary and MoE settings checks run on it.
#include "fuzz_support.h"
#include "moelens/error.h"
#include "moelens/model.h"
#include "moelens/moe_settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    try {
        const moelens::ModelConfig c = moelens::parse_model_config_text(moelens::fuzz::as_text(data, size), "fuzz/config.json");
        // A valid config's MoE layers and defaults: the default settings always pass.
        moelens::check_moe_settings(c, {});
        for (int l = 0; l < c.num_hidden_layers; ++l) (void)c.is_moe_layer(l);
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
