// A safetensors file as it arrives from the internet: header length, JSON
// header, data offsets. Opening validates everything (engine/model/safetensors.cpp);
// every tensor it accepts must then be readable within the file.
#include "fuzz_support.h"
#include "moelens/error.h"
#include "moelens/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto path = moelens::fuzz::scratch_dir() / "model.safetensors";
    moelens::fuzz::write_file(path, data, size);
    try {
        const moelens::SafetensorsFile f(path);
        for (const auto& [name, t] : f.tensors()) {
            if (!f.holds(f.data(t), t.nbytes)) __builtin_trap();  // accepted, but outside the file
            if (t.numel() > (1u << 16)) continue;
            try {
                if (t.dtype == moelens::DType::I32 || t.dtype == moelens::DType::I64)
                    (void)f.to_i64(name);
                else
                    (void)f.to_f32(name);
            } catch (const moelens::Error& e) {
                moelens::fuzz::rejected(e);  // a dtype to_f32 / to_i64 does not widen
            }
        }
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
