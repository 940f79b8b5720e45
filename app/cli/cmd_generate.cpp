// moelens-cli generate: sample a continuation, streaming tokens as they come.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "args.h"
#include "commands.h"
#include "moelens/session.h"
#include "token_list.h"

namespace moelens::cli {
namespace {

SamplingParams sampling_from(const Args& args)
{
    SamplingParams p;
    p.temperature = static_cast<float>(args.get_double("temperature", p.temperature));
    p.top_k = static_cast<int>(args.get_int("top-k", p.top_k));
    p.top_p = static_cast<float>(args.get_double("top-p", p.top_p));
    p.min_p = static_cast<float>(args.get_double("min-p", p.min_p));
    p.repetition_penalty = static_cast<float>(args.get_double("repeat-penalty", p.repetition_penalty));
    p.seed = static_cast<std::uint64_t>(args.get_int("seed", 0));
    p.max_new_tokens = static_cast<int>(args.get_int("max-new-tokens", 64));
    if (args.flag("greedy")) p.temperature = 0.0f;
    if (args.flag("ignore-eos")) p.stop_at_eos = false;
    if (p.max_new_tokens < 0) throw UsageError("--max-new-tokens must not be negative");
    if (p.repetition_penalty <= 0) throw UsageError("--repeat-penalty must be positive");
    return p;
}

int run_generate(const std::vector<std::string>& argv)
{
    Args args(argv,
              {"model", "tokens", "temperature", "top-k", "top-p", "min-p", "repeat-penalty", "seed", "max-new-tokens",
               "attention", "threads", "weights", "cache"},
              {"greedy", "ignore-eos", "stats"});
    const SamplingParams params = sampling_from(args);
    // The prompt as token ids. Text prompts (--prompt, --chat) come with the
    // tokenizer: they produce this same vector, and print_token below then
    // prints decoded text instead of ids.
    const std::vector<int> prompt = parse_token_list(args.require("tokens"));
    const std::string attention = args.get("attention").value_or("absorbed");
    if (attention != "absorbed" && attention != "naive") throw UsageError("--attention must be 'absorbed' or 'naive'");
    const long long threads = args.get_int("threads", 0);
    if (threads < 0 || threads > 1024) throw UsageError("--threads must be between 0 and 1024");

    const std::string weights = args.get("weights").value_or("stored");
    if (weights != "stored" && weights != "int8") throw UsageError("--weights must be 'stored' or 'int8'");

    LoadOptions load;
    load.threads = static_cast<unsigned>(threads);
    if (weights == "int8") {
        // Quantised once, then kept (and mapped on later runs) in the cache folder.
        load.weights = WeightsFormat::int8;
        if (auto c = args.get("cache")) {
            load.cache_dir = *c;
        } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
            load.cache_dir = std::filesystem::path(x) / "moelens" / "weights";
        } else if (const char* h = std::getenv("HOME"); h && *h) {
            load.cache_dir = std::filesystem::path(h) / ".cache" / "moelens" / "weights";
        }
    }
    auto model = load_model(args.require("model"), load);
    SessionOptions opts;
    opts.attention = attention == "naive" ? AttentionPath::naive : AttentionPath::absorbed;
    Session session(model, opts);

    bool first = true;
    GenerateHooks hooks;
    hooks.on_token = [&](int token) {
        std::printf(first ? "%d" : " %d", token);
        std::fflush(stdout);
        first = false;
    };
    const GenerationResult r = session.generate(prompt, params, {}, nullptr, hooks);
    std::printf("\n");
    if (args.flag("stats")) {
        const CacheStats cs = session.cache_stats();
        std::fprintf(stderr, "prompt %d tokens in %.3f s (%.1f tok/s); generated %zu tokens in %.3f s (%.1f tok/s); stop: %s\n",
                     r.prompt_tokens, r.prefill_seconds, r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0.0,
                     r.tokens.size(), r.decode_seconds, r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0.0,
                     stop_reason_name(r.reason));
        std::fprintf(stderr, "latent cache: %d tokens, %llu bytes used, %llu reserved; multi-head would need %llu bytes\n",
                     cs.tokens_held, static_cast<unsigned long long>(cs.latent_bytes_used),
                     static_cast<unsigned long long>(cs.latent_bytes_reserved),
                     static_cast<unsigned long long>(cs.mha_equivalent_bytes));
    }
    return 0;
}

}  // namespace

const Command kGenerateCommand = {
    "generate",
    "--model DIR --tokens 1,2,3 [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] "
    "[--repeat-penalty R] [--seed S] [--greedy] [--ignore-eos] [--attention absorbed|naive] [--threads N] [--weights stored|int8] [--cache DIR] [--stats]",
    "sample a continuation of a prompt, printing token ids as they are generated", run_generate};

}  // namespace moelens::cli
