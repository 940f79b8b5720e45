// moelens-cli tokenize: JSON Lines {"text": ...} on stdin -> {"ids": [...]} on stdout,
// one output line per input line, in order. The conformance interface for the
// tokenizer (compare with Hugging Face tokenizers on the same lines).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "moelens/tokenizer.h"

namespace moelens::cli {
namespace {

int run_tokenize(const std::vector<std::string>& argv)
{
    const Args args(argv, {"tokenizer"}, {"add-special", "bos", "bench"});
    if (args.flag("add-special") && args.flag("bos"))
        throw UsageError("--add-special (tokenizer.json post-processor) and --bos (transformers' encode) exclude each other");
    const Tokenizer tok = Tokenizer::load(args.require("tokenizer"));

    std::string line;
    std::size_t line_no = 0, bytes = 0, tokens = 0;
    double seconds = 0;
    while (std::getline(std::cin, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json in;
        try {
            in = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            throw Error("stdin line " + std::to_string(line_no) + ": not JSON: " + e.what());
        }
        if (!in.is_object() || !in.contains("text") || !in["text"].is_string())
            throw Error("stdin line " + std::to_string(line_no) + ": expected {\"text\": \"...\"}");
        const std::string& text = in["text"].get_ref<const std::string&>();
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<std::uint32_t> ids = args.flag("bos") ? tok.encode_with_bos(text)
                                                                : tok.encode(text, args.flag("add-special"));
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        bytes += text.size();
        tokens += ids.size();
        std::string out = "{\"ids\": [";
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (i) out += ", ";
            out += std::to_string(ids[i]);
        }
        out += "]}\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    }
    if (args.flag("bench") && seconds > 0)
        std::fprintf(stderr, "tokenize: %zu lines, %zu bytes -> %zu tokens in %.3f s encode time (%.2f MB/s, %.0f tokens/s)\n",
                     line_no, bytes, tokens, seconds, static_cast<double>(bytes) / 1e6 / seconds,
                     static_cast<double>(tokens) / seconds);
    return 0;
}

}  // namespace

const Command kTokenizeCommand = {"tokenize", "--tokenizer DIR_OR_FILE [--add-special | --bos] [--bench]",
                                  "JSON Lines {\"text\"} on stdin -> {\"ids\"} on stdout (--bench: encode speed on stderr)",
                                  run_tokenize};

}  // namespace moelens::cli
