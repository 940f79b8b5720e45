// moelens-cli perplexity: how well a model predicts a text file, the way
// tools/train-demo reports validation perplexity (engine/include/moelens/perplexity.h).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "files.h"
#include "moelens/error.h"
#include "moelens/perplexity.h"
#include "moelens/tokenizer.h"

namespace moelens::cli {
namespace {

int run_perplexity(const std::vector<std::string>& argv)
{
    Args args(argv, {"model", "text", "tokenizer", "window", "threads"}, {"json", "quiet"});
    const std::string model_dir = args.require("model");
    const std::string text_path = args.require("text");
    const long long threads = args.get_int("threads", 0);
    if (threads < 0 || threads > 1024) throw UsageError("--threads must be between 0 and 1024");

    const Tokenizer tokenizer = Tokenizer::load(args.get("tokenizer").value_or(model_dir));
    LoadOptions load;
    load.threads = static_cast<unsigned>(threads);
    auto model = load_model(model_dir, load);
    const long long window = args.get_int("window", model->config().max_position_embeddings);
    if (window < 2 || window > model->config().max_position_embeddings)
        throw UsageError("--window must be between 2 and the model's max_position_embeddings (" +
                         std::to_string(model->config().max_position_embeddings) + ")");
    const int bos = model->config().bos_token_id >= 0 ? model->config().bos_token_id
                                                       : static_cast<int>(tokenizer.bos_id().value_or(0));

    const std::string text = read_file(text_path, "text file");
    const std::vector<std::uint32_t> encoded = tokenizer.encode(text, false);
    if (encoded.empty()) throw Error(text_path + ": the text has no tokens");
    const std::vector<int> ids(encoded.begin(), encoded.end());

    const bool quiet = args.flag("quiet");
    const PerplexityResult r = perplexity(model, ids, bos, static_cast<int>(window), [&](long long done, long long total) {
        if (!quiet) std::fprintf(stderr, "\r%lld / %lld tokens", done, total);
        return true;
    });
    if (!quiet) std::fprintf(stderr, "\n");

    if (args.flag("json")) {
        const nlohmann::json out = {{"tokens", r.tokens}, {"windows", r.windows}, {"window", window},
                                    {"mean_nll", r.mean_nll}, {"perplexity", r.perplexity}};
        std::printf("%s\n", out.dump().c_str());
    } else {
        std::printf("tokens      %lld\nwindows     %d of %lld tokens\nmean NLL    %.6f nats/token\nperplexity  %.4f\n",
                    r.tokens, r.windows, window, r.mean_nll, r.perplexity);
    }
    return 0;
}

}  // namespace

const Command kPerplexityCommand = {
    "perplexity", "--model DIR --text FILE [--tokenizer DIR] [--window N] [--threads N] [--json] [--quiet]",
    "tokens, mean negative log-likelihood and perplexity of the model on a text (windows of N, default the model's context)",
    run_perplexity};

}  // namespace moelens::cli
