// moelens-bench storage: the chat store at the size of a heavy user's history.
// Inserts --messages messages the way the app does (one transaction per action,
// synchronous=FULL), every reply with a routing trace; then times listing chats,
// searching, loading a 1,000-message chat, opening the file and deleting a chat.
// Prints the median, min and max of each figure.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "moelens_storage/store.h"

namespace moelens::bench {
namespace {

using namespace moelens::storage;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void report(const char* name, std::vector<double> samples, const char* unit = "ms")
{
    if (samples.empty()) return;
    std::sort(samples.begin(), samples.end());
    const double median = samples.size() % 2 ? samples[samples.size() / 2]
                                             : (samples[samples.size() / 2 - 1] + samples[samples.size() / 2]) / 2;
    std::printf("  %-36s median %9.3f %s   min %9.3f   max %9.3f   (n=%zu)\n", name, median, unit, samples.front(),
                samples.back(), samples.size());
}

// Text from a fixed vocabulary of made-up words with a skewed (Zipf-like) frequency,
// so search sees common and rare terms as in real chats.
class TextMaker {
public:
    explicit TextMaker(unsigned seed) : m_rng(seed)
    {
        const char* syllables[] = {"ka", "lo", "mi", "ne", "ru",  "sa",  "to",
                                   "vi", "xe", "zu", "pe", "qua", "dor", "lin"};
        for (int i = 0; i < 3000; ++i) {
            std::string w;
            for (int k = 0, n = 2 + i % 3, x = i; k < n; ++k, x /= 14) w += syllables[(x + k * 5) % 14];
            m_words.push_back(w + std::to_string(i % 97));
        }
    }
    std::string words(int n)
    {
        std::string out;
        for (int i = 0; i < n; ++i) {
            // The square of a uniform variate picks low indexes far more often.
            const double u = std::uniform_real_distribution<double>(0, 1)(m_rng);
            out += m_words[static_cast<std::size_t>(u * u * (m_words.size() - 1))];
            out += i % 12 == 11 ? ". " : " ";
        }
        return out;
    }
    const std::string& word(std::size_t i) const { return m_words[i]; }

private:
    std::mt19937 m_rng;
    std::vector<std::string> m_words;
};

RoutingTrace make_trace(int tokens, std::mt19937& rng)
{
    RoutingTrace t;
    t.n_experts = 64;
    t.top_k = 6;
    for (std::uint16_t l = 1; l <= 26; ++l) t.layers.push_back(l);  // DeepSeek-V2-Lite: layers 1..26 are MoE
    t.token_ids.resize(static_cast<std::size_t>(tokens));
    t.token_texts.resize(static_cast<std::size_t>(tokens));
    for (int i = 0; i < tokens; ++i) {
        t.token_ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng() % 102400);
        t.token_texts[static_cast<std::size_t>(i)] = " tok";
    }
    for (std::size_t r = 0; r < static_cast<std::size_t>(tokens) * 26; ++r) {
        const std::uint16_t start = static_cast<std::uint16_t>(rng() % 64);
        for (std::uint16_t k = 0; k < 6; ++k) {
            t.expert_ids.push_back(static_cast<std::uint16_t>((start + k * 11) % 64));
            t.gate_weights.push_back(static_cast<float>(rng() % 1000) / 1000.0f);
        }
    }
    return t;
}

int run_storage(const std::vector<std::string>& argv)
{
    cli::Args args(argv, {"dir", "messages", "chat-size", "trace-tokens", "reps"}, {"keep"});
    const int n_messages = static_cast<int>(args.get_int("messages", 10000));
    const int big_chat = static_cast<int>(args.get_int("chat-size", 1000));
    const int trace_tokens = static_cast<int>(args.get_int("trace-tokens", 100));
    const int reps = static_cast<int>(args.get_int("reps", 7));
    if (n_messages < big_chat || big_chat < 2 || reps < 1 || trace_tokens < 0)
        throw cli::UsageError("need --messages >= --chat-size >= 2, --reps >= 1, --trace-tokens >= 0");

    namespace fs = std::filesystem;
    const fs::path dir = args.get("dir")
                             ? fs::path(*args.get("dir"))
                             : fs::temp_directory_path() / ("moelens-bench-storage-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string path = (dir / "bench.db").string();
    for (const char* suffix : {"", "-wal", "-shm", ".lock"}) fs::remove(path + suffix);

    std::printf(
        "storage benchmark: %d messages (one chat of %d, the rest in chats of 20), replies with %d-token traces "
        "(26 layers, 6 of 64), %d reps\n  database: %s\n",
        n_messages, big_chat, trace_tokens, reps, path.c_str());

    TextMaker text(1);
    std::mt19937 rng(2);
    RunRecord run;
    run.model_path = "DeepSeek-V2-Lite-Chat";
    run.model_fingerprint = "bench";
    run.sampling_json = R"({"temperature":0.7,"top_p":0.95,"max_tokens":512})";
    run.tokens_out = trace_tokens;

    std::vector<double> t_user, t_begin, t_append, t_finish;
    ChatId big = 0;
    std::vector<ChatId> small_chats;
    const auto insert_start = Clock::now();
    {
        Store store = Store::open(path);
        int written = 0;
        while (written < n_messages) {
            const bool first = written == 0;
            const int size = std::min(first ? big_chat : 20, n_messages - written);
            const ChatId chat = store.create_chat({"chat " + std::to_string(written), "DeepSeek-V2-Lite-Chat", ""});
            if (first)
                big = chat;
            else
                small_chats.push_back(chat);
            for (int i = 0; i < size; i += 2) {
                auto t0 = Clock::now();
                const MessageId question = store.append_message(chat, Role::User, text.words(30));
                t_user.push_back(ms_since(t0));
                ++written;
                if (i + 1 >= size) break;
                t0 = Clock::now();
                const MessageId reply = store.begin_reply(chat, question);
                t_begin.push_back(ms_since(t0));
                const std::string answer = text.words(150);
                // Every 10th reply streams in 8 saves, as the UI does every 250 ms.
                if (written % 20 == 1) {
                    for (int s = 0; s < 8; ++s) {
                        t0 = Clock::now();
                        store.append_reply_text(reply, answer.substr(answer.size() * s / 8, answer.size() / 8 + 1));
                        t_append.push_back(ms_since(t0));
                    }
                }
                const RoutingTrace trace = make_trace(trace_tokens, rng);
                t0 = Clock::now();
                store.finish_reply(reply, answer, MessageState::Complete, run, trace_tokens > 0 ? &trace : nullptr);
                t_finish.push_back(ms_since(t0));
                ++written;
            }
        }
    }
    const double insert_s = ms_since(insert_start) / 1000;
    std::printf("\ninsert (one synced transaction each), total %.1f s, %.0f messages/s:\n", insert_s,
                n_messages / insert_s);
    report("user message (append_message)", t_user);
    report("reply start (begin_reply)", t_begin);
    report("streaming save (append_reply_text)", t_append);
    report("reply end + run + trace (finish)", t_finish);
    std::printf("  database size %.1f MB\n", static_cast<double>(fs::file_size(path)) / 1e6);

    std::vector<double> t_open_check, t_open_fast;
    for (int r = 0; r < reps; ++r) {
        OpenOptions check;
        check.check = OpenOptions::Check::Always;
        auto t0 = Clock::now();
        {
            Store s = Store::open(path, check);
        }
        t_open_check.push_back(ms_since(t0));
        t0 = Clock::now();
        {
            Store s = Store::open(path);
        }
        t_open_fast.push_back(ms_since(t0));
    }
    std::printf("\nopen:\n");
    report("open after a crash (quick_check)", t_open_check);
    report("open after a clean exit", t_open_fast);

    {
        Store store = Store::open(path);
        std::vector<double> t_list, t_load, t_trace, t_search_common, t_search_rare, t_search_two, t_search_prefix,
            t_delete;
        std::size_t listed = 0, loaded = 0, hits_common = 0, hits_rare = 0;
        const RunId some_run = store.list_runs(store.load_current_path(big).back().id).back().id;
        for (int r = 0; r < reps; ++r) {
            auto t0 = Clock::now();
            listed = store.list_chats().size();
            t_list.push_back(ms_since(t0));
            t0 = Clock::now();
            loaded = store.load_current_path(big).size();
            t_load.push_back(ms_since(t0));
            t0 = Clock::now();
            store.load_trace(some_run);
            t_trace.push_back(ms_since(t0));
            t0 = Clock::now();
            hits_common = store.search(text.word(0)).size();
            t_search_common.push_back(ms_since(t0));
            t0 = Clock::now();
            hits_rare = store.search(text.word(2900)).size();
            t_search_rare.push_back(ms_since(t0));
            t0 = Clock::now();
            store.search(text.word(3) + " " + text.word(10));
            t_search_two.push_back(ms_since(t0));
            t0 = Clock::now();
            store.search(text.word(5).substr(0, 3));
            t_search_prefix.push_back(ms_since(t0));
            if (static_cast<std::size_t>(r) < small_chats.size()) {
                t0 = Clock::now();
                store.delete_chat(small_chats[static_cast<std::size_t>(r)]);
                t_delete.push_back(ms_since(t0));
            }
        }
        std::printf("\nqueries:\n");
        std::printf("  (%zu chats listed, %zu messages on the path, %zu/%zu hits for a common/rare word, limit 50)\n",
                    listed, loaded, hits_common, hits_rare);
        report("list chats", t_list);
        const std::string load_label = "load the " + std::to_string(big_chat) + "-message chat";
        report(load_label.c_str(), t_load);
        report("load one trace (decode)", t_trace);
        report("search, common word", t_search_common);
        report("search, rare word", t_search_rare);
        report("search, two words", t_search_two);
        report("search, 3-letter prefix", t_search_prefix);
        report("delete a 20-message chat (scrubbed)", t_delete);
    }

    if (!args.flag("keep")) fs::remove_all(dir);
    return 0;
}

}  // namespace

const Command kStorageCommand = {
    "storage", "[--messages N] [--chat-size N] [--trace-tokens N] [--reps N] [--dir DIR] [--keep]",
    "chat store: insert messages with traces, list, search, load a long chat, open, delete", run_storage};

}  // namespace moelens::bench
