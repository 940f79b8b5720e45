// Helper of test_crash: streams replies into a database until it is killed.
// Usage: crash_writer DB TAG. Prints, each after the call returned (so committed):
//   ready PID | committed ID (a user message) | reply ID | saved ID LENGTH | finished ID
#include <unistd.h>

#include <cstdio>
#include <string>

#include "crash_stream.h"
#include "moelens_storage/store.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using namespace moelens::storage::test;

int main(int argc, char** argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: crash_writer DB TAG\n");
        return 2;
    }
    const std::string tag = argv[2];
    try {
        Store store = Store::open(argv[1]);
        if (store.read_only()) {
            std::fprintf(stderr, "crash_writer: %s\n", store.open_report().message.c_str());
            return 3;
        }
        const auto chats = store.list_chats();
        const ChatId chat = chats.empty() ? store.create_chat({"crash test", "", ""}) : chats.front().id;
        std::printf("ready %d\n", static_cast<int>(::getpid()));
        std::fflush(stdout);
        for (int round = 0;; ++round) {
            const MessageId question = store.append_message(chat, Role::User, crash_question(tag, round));
            std::printf("committed %lld\n", static_cast<long long>(question));
            std::fflush(stdout);
            const MessageId reply = store.begin_reply(chat, question);
            std::printf("reply %lld\n", static_cast<long long>(reply));
            std::fflush(stdout);
            std::size_t length = 0;
            for (int c = 0; c < kCrashChunks; ++c) {
                const std::string chunk = crash_chunk(c);
                store.append_reply_text(reply, chunk);
                length += chunk.size();
                std::printf("saved %lld %zu\n", static_cast<long long>(reply), length);
                std::fflush(stdout);
            }
            RunRecord run;
            run.model_path = "crash-model";
            run.tokens_out = kCrashChunks * 4;
            const RoutingTrace trace = make_trace(kCrashChunks * 4, 4, 2, 16, static_cast<unsigned>(round));
            store.finish_reply(reply, crash_reply_text(), MessageState::Complete, run, &trace);
            std::printf("finished %lld\n", static_cast<long long>(reply));
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crash_writer: %s\n", e.what());
        return 1;
    }
}
