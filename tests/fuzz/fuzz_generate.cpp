// The generation entry point on the built-in model (resources/demo-model, the
// app's default: 6 layers, 16 experts, 4096 ids): 1 to 3 requests with
// fuzzed prompts (ids inside and far outside the vocabulary), sampling values
// (NaN, negative, huge) and MoE settings, submitted to one scheduler and run.
// Bad values must be refused where they enter with an Error; good ones must run
// to a stop. Tokens per input are few, so an input runs in milliseconds.
#include <bit>
#include <cmath>

#include "fuzz_support.h"
#include "moelens/error.h"
#include "moelens/scheduler.h"

namespace {

std::shared_ptr<const moelens::Model> builtin_model()
{
    return moelens::load_model(MOELENS_RESOURCES_DIR "/demo-model", moelens::LoadOptions{1, {}});
}

// A float from one byte: mostly ordinary values, sometimes NaN, infinity or negative.
float fuzz_float(std::uint8_t b, float scale)
{
    switch (b) {
    case 255: return NAN;
    case 254: return INFINITY;
    case 253: return -1.0f;
    default: return static_cast<float>(b) * scale;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static const std::shared_ptr<const moelens::Model> model = builtin_model();
    const moelens::ModelConfig& c = model->config();
    moelens::fuzz::Bytes in(data, size);
    // A step budget of 1..32 rows, a pool of 1..4 blocks or unlimited, sharing on or off.
    moelens::Scheduler s(model, moelens::SchedulerOptions{1 + in.u8() % 32, in.u8() % 5, (in.u8() & 1) != 0});
    const int requests = 1 + in.u8() % 3;
    for (int r = 0; r < requests; ++r) {
        moelens::GenerationRequest req;
        const int n = in.u8() % 12;
        for (int i = 0; i < n; ++i) {
            const std::uint32_t v = in.u32();
            // Mostly valid ids, some at and past the vocabulary's end, some negative.
            req.prompt.push_back((v & 7) == 0 ? static_cast<int>(v) : static_cast<int>(v % static_cast<std::uint32_t>(c.vocab_size)));
        }
        req.sampling.temperature = fuzz_float(in.u8(), 1.0f / 64);
        req.sampling.top_k = static_cast<std::int8_t>(in.u8());
        req.sampling.top_p = fuzz_float(in.u8(), 1.0f / 200);
        req.sampling.min_p = fuzz_float(in.u8(), 1.0f / 200);
        req.sampling.repetition_penalty = fuzz_float(in.u8(), 1.0f / 64);
        req.sampling.seed = in.u32();
        req.sampling.max_new_tokens = static_cast<int>(in.u8() % 6) - 1;
        req.max_tokens = static_cast<int>(in.u8() % 24);
        const std::uint8_t moe = in.u8();
        if (moe & 1) req.moe.experts_per_token = static_cast<int>(in.u8() % 20) - 1;
        if (moe & 2) req.moe.device_limit = static_cast<int>(in.u8() % 6) - 1;
        if (moe & 4)
            for (int i = in.u8() % 6; i > 0; --i) req.moe.disabled.push_back({in.u8() % 30 - 1, in.u8() % 20 - 1});
        try {
            s.submit(std::move(req));
        } catch (const moelens::Error& e) {
            moelens::fuzz::rejected(e);
        }
    }
    s.run();
    return 0;
}
