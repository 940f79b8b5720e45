// The real DeepSeek tokenizer on arbitrary bytes (invalid UTF-8 included):
// encode, decode what came out, decode arbitrary ids (out of range ones must be
// refused, not read), and stream them through the detokenizer, whose pieces must
// add up to decode().
#include "fuzz_support.h"
#include "moelens/error.h"
#include "moelens/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static const moelens::Tokenizer t = moelens::Tokenizer::load(MOELENS_RESOURCES_DIR "/tokenizer");
    const std::string_view text = moelens::fuzz::as_text(data, size);
    try {
        const auto ids = t.encode(text, size % 2 == 0);
        (void)t.decode(ids);
        (void)t.encode_with_bos(text);
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    // The same bytes read as ids (some far outside the vocabulary).
    moelens::fuzz::Bytes b(data, size);
    std::vector<std::uint32_t> ids;
    while (b.left() >= 4 && ids.size() < 256) {
        const std::uint32_t v = b.u32();
        ids.push_back(v % 8 == 0 ? v : v % 130000);
    }
    try {
        const std::string whole = t.decode(ids);
        moelens::StreamingDetokenizer d(t);
        std::string streamed;
        for (std::uint32_t id : ids) streamed += d.push(id);
        streamed += d.finish();
        if (streamed != whole) __builtin_trap();  // the documented invariant
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
