// tokenizer.json from a model folder (engine/tokenizer/tokenizer_json.cpp):
// model, vocabulary, merges, added tokens, pre-tokenizer regexes. One that loads
// must then encode and decode a mixed text without failing.
#include "fuzz_support.h"
#include "moelens/error.h"
#include "moelens/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto path = moelens::fuzz::scratch_dir() / "tokenizer.json";
    moelens::fuzz::write_file(path, data, size);
    try {
        const moelens::Tokenizer t = moelens::Tokenizer::load(path.string());
        const auto ids = t.encode("Hello, world! 123 \xe4\xbd\xa0\xe5\xa5\xbd <|EOT|>\n\tx", true);
        (void)t.decode(ids);
    } catch (const moelens::Error& e) {
        moelens::fuzz::rejected(e);
    }
    return 0;
}
