// moelens-cli make-demo: writes the built-in random-weight demo model.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "args.h"
#include "commands.h"
#include "moelens/demo.h"
#include "moelens/error.h"

namespace moelens::cli {
namespace {

namespace fs = std::filesystem;

// The DeepSeek tokenizer shipped with the program: installed beside it
// (<prefix>/share/moelens/tokenizer), or in the source tree for a build folder
// directly under it.
fs::path find_tokenizer_dir()
{
    std::error_code ec;
    const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    const fs::path candidates[] = {
        exe_dir / ".." / "share" / "moelens" / "tokenizer",
        exe_dir / ".." / ".." / "resources" / "tokenizer",
    };
    for (const auto& c : candidates)
        if (fs::is_regular_file(c / "tokenizer.json", ec)) return fs::weakly_canonical(c, ec);
    throw Error("no tokenizer found beside the program (looked in " + candidates[0].string() + " and " +
                candidates[1].string() + "); pass --tokenizer DIR");
}

int run_make_demo(const std::vector<std::string>& argv)
{
    Args args(argv, {"seed", "tokenizer"}, {});
    if (args.positional().size() != 1) throw UsageError("expected exactly one folder");
    DemoModelSpec spec;
    spec.seed = static_cast<std::uint64_t>(args.get_int("seed", 42));
    spec.tokenizer_dir = args.get("tokenizer") ? fs::path(*args.get("tokenizer")) : find_tokenizer_dir();
    const auto t0 = std::chrono::steady_clock::now();
    write_demo_model(args.positional()[0], spec);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote demo model (random weights, seed %llu) to %s in %.2f s\n",
                static_cast<unsigned long long>(spec.seed), args.positional()[0].c_str(), s);
    return 0;
}

}  // namespace

const Command kMakeDemoCommand = {"make-demo", "DIR [--seed N] [--tokenizer DIR]",
                                  "write the small random-weight demo model (DeepSeek-V2-Lite layout) into DIR",
                                  run_make_demo};

}  // namespace moelens::cli
