// moelens-cli generate: sample a continuation, streaming tokens as they come.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "args.h"
#include "commands.h"
#include "device_options.h"
#include "moelens/chat_template.h"
#include "moelens/session.h"
#include "moelens/tokenizer.h"
#include "id_lists.h"
#include "moe_options.h"

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
    if (auto stop = args.get("stop")) p.stop_strings.push_back(*stop);
    return p;
}

// --prompt TEXT is encoded as transformers' tokenizer.encode(text) does (BOS from
// tokenizer_config.json); with --chat it becomes one user turn (after an optional
// --system turn) rendered by the model's chat template, which emits BOS itself.
std::vector<int> encode_text_prompt(const Args& args, const Tokenizer& tokenizer)
{
    const std::string text = args.require("prompt");
    std::vector<std::uint32_t> ids;
    if (args.flag("chat")) {
        std::vector<ChatMessage> messages;
        if (auto system = args.get("system")) messages.push_back(ChatMessage{"system", *system, {}});
        messages.push_back(ChatMessage{"user", text, {}});
        ids = tokenizer.encode(ChatTemplate::from_tokenizer(tokenizer).render(messages, true), false);
    } else {
        if (args.get("system")) throw UsageError("--system needs --chat");
        ids = tokenizer.encode_with_bos(text);
    }
    return std::vector<int>(ids.begin(), ids.end());
}

int run_generate(const std::vector<std::string>& argv)
{
    Args args(argv,
              with_moe_options(with_device_options({"model", "tokens", "temperature", "top-k", "top-p", "min-p", "repeat-penalty", "seed",
                                   "max-new-tokens", "attention", "threads", "weights", "cache", "prompt", "system",
                                   "stop", "tokenizer", "virtual-devices", "device-memory"})),
              {"greedy", "ignore-eos", "stats", "chat"});
    const SamplingParams params = sampling_from(args);
    const MoeSettings moe = moe_settings_from(args);
    const long long devices = args.get_int("virtual-devices", 0);
    if (devices < 0 || devices > 4096) throw UsageError("--virtual-devices must be between 0 and 4096");
    const double device_mib = args.get_double("device-memory", 0.0);
    if (!(device_mib >= 0 && device_mib <= 1 << 30)) throw UsageError("--device-memory must be MiB between 0 and 2^30");
    if (device_mib > 0 && devices == 0) throw UsageError("--device-memory needs --virtual-devices");
    const bool text_mode = args.get("prompt").has_value();
    if (text_mode == args.get("tokens").has_value()) throw UsageError("give exactly one of --tokens and --prompt");
    if (args.flag("chat") && !text_mode) throw UsageError("--chat needs --prompt");

    // Text prompts need the tokenizer (the model folder's, unless --tokenizer); with
    // --tokens the output is token ids and no tokenizer is read.
    std::optional<Tokenizer> tokenizer;
    if (text_mode || !params.stop_strings.empty())
        tokenizer = Tokenizer::load(args.get("tokenizer").value_or(args.require("model")));
    const std::vector<int> prompt =
        text_mode ? encode_text_prompt(args, *tokenizer) : parse_token_list(args.require("tokens"));
    const std::string attention = args.get("attention").value_or("absorbed");
    if (attention != "absorbed" && attention != "naive") throw UsageError("--attention must be 'absorbed' or 'naive'");
    const long long threads = args.get_int("threads", 0);
    if (threads < 0 || threads > 1024) throw UsageError("--threads must be between 0 and 1024");

    const std::string weights = args.get("weights").value_or("stored");
    if (weights != "stored" && weights != "int8") throw UsageError("--weights must be 'stored' or 'int8'");

    LoadOptions load;
    load.threads = static_cast<unsigned>(threads);
    apply_device_options(args, load);
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
    check_moe_flags(model->config(), moe);
    SessionOptions opts;
    opts.attention = attention == "naive" ? AttentionPath::naive : AttentionPath::absorbed;
    opts.moe = moe;
    opts.virtual_devices = static_cast<int>(devices);
    opts.virtual_device_memory = static_cast<std::uint64_t>(device_mib * 1024.0 * 1024.0);
    Session session(model, opts);

    bool first = true;
    GenerateHooks hooks;
    std::optional<StreamingDetokenizer> detok;
    if (tokenizer) hooks.token_text = [&](int token) { return tokenizer->decode(std::vector<std::uint32_t>{static_cast<std::uint32_t>(token)}); };
    if (text_mode) {
        // Text streams out whole characters only; the stop token's text is not printed.
        detok.emplace(*tokenizer, /*skip_special_tokens=*/true);
        hooks.on_token = [&](int token) {
            const std::string piece = detok->push(static_cast<std::uint32_t>(token));
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        };
    } else {
        hooks.on_token = [&](int token) {
            std::printf(first ? "%d" : " %d", token);
            std::fflush(stdout);
            first = false;
        };
    }
    const GenerationResult r = session.generate(prompt, params, {}, nullptr, hooks);
    if (detok) {
        const std::string rest = detok->finish();
        std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
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
        const ModelConfig& c = model->config();
        std::fprintf(stderr, "routing: %s; %llu active parameters per token\n", routing_summary(c, moe).c_str(),
                     static_cast<unsigned long long>(active_parameters(model->info(), moe)));
        if (devices > 0) {
            // Per token = per token of every computed position (prompt and generated).
            const ExpertTraffic& t = session.expert_traffic();
            const double tokens = std::max<double>(1.0, static_cast<double>(session.position()));
            std::fprintf(stderr,
                         "experts on %d virtual devices: %.2f devices per token and layer, imbalance %.2f; "
                         "dispatch %.0f bytes and %.3f ms per token, combine %.0f bytes and %.3f ms per token\n",
                         t.devices, t.mean_devices_touched(), t.imbalance(), static_cast<double>(t.dispatch_bytes()) / tokens,
                         1e3 * t.dispatch_seconds / tokens, static_cast<double>(t.combine_bytes()) / tokens,
                         1e3 * t.combine_seconds / tokens);
            const ExpertPlacement& p = *session.placement();
            for (int d = 0; d < p.devices; ++d)
                std::fprintf(stderr, "  device %d: %llu expert products, weights %.2f MiB, peak expert activations %.3f MiB\n", d,
                             static_cast<unsigned long long>(t.expert_rows[static_cast<std::size_t>(d)]),
                             static_cast<double>(p.weight_bytes[static_cast<std::size_t>(d)]) / (1024.0 * 1024.0),
                             static_cast<double>(t.peak_activation_bytes[static_cast<std::size_t>(d)]) / (1024.0 * 1024.0));
        }
    }
    return 0;
}

}  // namespace

const Command kGenerateCommand = {
    "generate",
    "--model DIR (--tokens 1,2,3 | --prompt TEXT [--chat [--system TEXT]] [--tokenizer DIR]) [--stop TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] "
    "[--repeat-penalty R] [--seed S] [--greedy] [--ignore-eos] [--attention absorbed|naive] [--threads N] [--weights stored|int8] [--cache DIR] [--stats] "
    "[--experts-per-token K] [--device-limit M] [--disable-experts L:E,...] [--virtual-devices D [--device-memory MiB]] "
    "[--device cpu|cuda[:N]] [--gpu-mode fast|precise] [--gpu-cache auto|f32|bf16|fp8] [--gpu-context N] [--weights-memory auto|resident|mapped]",
    "sample a continuation of a prompt, streaming token ids (--tokens) or text (--prompt) as they are generated", run_generate};

}  // namespace moelens::cli
