// moelens-cli detokenize: JSON Lines {"ids": [...]} on stdin -> {"text": ...} on stdout.
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "moelens/tokenizer.h"

namespace moelens::cli {
namespace {

int run_detokenize(const std::vector<std::string>& argv)
{
    const Args args(argv, {"tokenizer"}, {"skip-special"});
    const Tokenizer tok = Tokenizer::load(args.require("tokenizer"));
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(std::cin, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::vector<std::uint32_t> ids;
        try {
            const nlohmann::json in = nlohmann::json::parse(line);
            for (const auto& id : in.at("ids")) {
                // Ids past the vocabulary are dropped, as Hugging Face's decode does; a
                // negative one or one beyond u32 cannot be a token id at all (Python's
                // tokenizers raise OverflowError for them).
                if (!id.is_number_integer()) throw Error("an id is not an integer");
                if (id.is_number_unsigned() ? id.get<std::uint64_t>() > 0xFFFFFFFFull : id.get<std::int64_t>() < 0)
                    throw Error("id " + id.dump() + " is not a token id (0 .. 4294967295)");
                ids.push_back(static_cast<std::uint32_t>(id.get<std::uint64_t>()));
            }
        } catch (const nlohmann::json::exception& e) {
            throw Error("stdin line " + std::to_string(line_no) + ": expected {\"ids\": [...]}: " + e.what());
        } catch (const Error& e) {
            throw Error("stdin line " + std::to_string(line_no) + ": " + e.what());
        }
        const std::string out = nlohmann::json{{"text", tok.decode(ids, args.flag("skip-special"))}}.dump() + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace

const Command kDetokenizeCommand = {"detokenize", "--tokenizer DIR_OR_FILE [--skip-special]",
                                    "JSON Lines {\"ids\"} on stdin -> {\"text\"} on stdout", run_detokenize};

}  // namespace moelens::cli
