// moelens-cli forward: the conformance run. Writes the prompt's logits and routing
// and a greedy continuation in the layout of tests/fixtures/golden/*/golden.safetensors.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "device_options.h"
#include "moelens/forward_trace.h"
#include "id_lists.h"

namespace moelens::cli {
namespace {

int run_forward(const std::vector<std::string>& argv)
{
    Args args(argv, with_device_options({"model", "tokens", "greedy", "attention", "out", "threads"}), {});
    const std::string model_dir = args.require("model");
    const std::vector<int> tokens = parse_token_list(args.require("tokens"));
    const std::string out = args.require("out");
    const long long greedy = args.get_int("greedy", 0);
    if (greedy < 0 || greedy > 1000000) throw UsageError("--greedy must be between 0 and 1000000");
    const std::string attention = args.get("attention").value_or("absorbed");
    if (attention != "absorbed" && attention != "naive") throw UsageError("--attention must be 'absorbed' or 'naive'");
    const long long threads = args.get_int("threads", 0);
    if (threads < 0 || threads > 1024) throw UsageError("--threads must be between 0 and 1024");

    LoadOptions load;
    load.threads = static_cast<unsigned>(threads);
    apply_device_options(args, load);
    auto model = load_model(model_dir, load);
    const ForwardTrace trace = run_forward_trace(model, tokens, static_cast<int>(greedy),
                                                 attention == "naive" ? AttentionPath::naive : AttentionPath::absorbed);
    write_safetensors(out, forward_trace_tensors(trace), {{"producer", "moelens-cli forward"}, {"attention", attention}});
    std::fprintf(stderr, "wrote %s: %zu prompt tokens, %lld greedy tokens, %zu MoE layers\n", out.c_str(), tokens.size(),
                 greedy, trace.topk_idx.size());
    return 0;
}

}  // namespace

const Command kForwardCommand = {
    "forward",
    "--model DIR --tokens 1,2,3 [--greedy G] [--attention absorbed|naive] [--threads N] "
    "[--device cpu|cuda[:N]] [--gpu-mode fast|precise] [--gpu-cache auto|f32|bf16|fp8] [--gpu-context N] [--weights-memory auto|resident|mapped] "
    "--out FILE.safetensors",
    "prompt logits, routing and G greedy steps, written in the golden.safetensors layout", run_forward};

}  // namespace moelens::cli
