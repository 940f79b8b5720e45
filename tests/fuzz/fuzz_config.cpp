// config.json: every key that changes the math is parsed and cross-checked
// (engine/model/config.cpp). Whatever it accepts must also describe a model the
// rest of the engine can use: its default MoE settings must pass their check.
#include "fuzz_support.h"
#include "moelens/error.h"
#include "moelens/model.h"
#include "moelens/moe_settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    try {
        const moelens::ModelConfig c = moelens::parse_model_config_text(moelens::fuzz::as_text(data, size), "fuzz/config.json");
        // An accepted config's own routing is always valid settings.
        moelens::check_moe_settings(c, {});
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
