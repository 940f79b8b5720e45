// moelens-bench tokenizer: encoding throughput on a text file, single-threaded, with
// a correctness check (SHA-256 of the ids as little-endian uint32, as in
// bench_reference.json) and the ratio to the reference library's figure.
#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "moelens/error.h"
#include "moelens/tokenizer.h"

namespace moelens::bench {
namespace {

// FIPS 180-4 SHA-256, enough for checking the ids.
class Sha256 {
public:
    void update(const unsigned char* data, std::size_t n)
    {
        for (std::size_t i = 0; i < n; ++i) {
            m_block[m_fill++] = data[i];
            if (m_fill == 64) {
                compress();
                m_fill = 0;
            }
        }
        m_bits += static_cast<std::uint64_t>(n) * 8;
    }

    std::string hex()
    {
        const std::uint64_t bits = m_bits;
        const unsigned char pad = 0x80;
        update(&pad, 1);
        const unsigned char zero = 0;
        while (m_fill != 56) update(&zero, 1);
        unsigned char len[8];
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
        update(len, 8);
        std::string out;
        char buf[9];
        for (std::uint32_t h : m_h) {
            std::snprintf(buf, sizeof buf, "%08x", h);
            out += buf;
        }
        return out;
    }

private:
    static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

    void compress()
    {
        static constexpr std::uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        std::uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = (std::uint32_t{m_block[4 * i]} << 24) | (std::uint32_t{m_block[4 * i + 1]} << 16) |
                   (std::uint32_t{m_block[4 * i + 2]} << 8) | m_block[4 * i + 3];
        for (int i = 16; i < 64; ++i) {
            const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        std::uint32_t a = m_h[0], b = m_h[1], c = m_h[2], d = m_h[3], e = m_h[4], f = m_h[5], g = m_h[6], h = m_h[7];
        for (int i = 0; i < 64; ++i) {
            const std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        const std::uint32_t add[8] = {a, b, c, d, e, f, g, h};
        for (int i = 0; i < 8; ++i) m_h[i] += add[i];
    }

    std::array<std::uint32_t, 8> m_h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char m_block[64] = {};
    std::size_t m_fill = 0;
    std::uint64_t m_bits = 0;
};

std::string ids_sha256(const std::vector<std::uint32_t>& ids)
{
    Sha256 sha;
    for (std::uint32_t id : ids) {
        const unsigned char le[4] = {static_cast<unsigned char>(id), static_cast<unsigned char>(id >> 8),
                                     static_cast<unsigned char>(id >> 16), static_cast<unsigned char>(id >> 24)};
        sha.update(le, 4);
    }
    return sha.hex();
}

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The reference's "docs" mode: chunks of about 4 KB, split after blank lines.
std::vector<std::string> split_documents(const std::string& text)
{
    std::vector<std::string> docs;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = start + 4096;
        if (end >= text.size()) {
            end = text.size();
        } else {
            const std::size_t blank = text.find("\n\n", end);
            end = blank == std::string::npos ? text.size() : blank + 2;
        }
        docs.push_back(text.substr(start, end - start));
        start = end;
    }
    return docs;
}

// CPU time of this thread: on a busy shared machine it is steadier than wall time.
double thread_cpu_seconds()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Stats {
    double median, min, max;
};

Stats stats(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return {median, v.front(), v.back()};
}

// Median of the reference's per-session "whole"/"docs" MB/s, or 0 if absent.
double reference_mbps(const nlohmann::json& ref, const char* mode)
{
    std::vector<double> v;
    if (ref.contains("reference_throughput"))
        for (const auto& s : ref["reference_throughput"].value("sessions", nlohmann::json::array()))
            if (s.contains(mode)) v.push_back(s[mode].value("MBps", 0.0));
    return v.empty() ? 0.0 : stats(v).median;
}

int run_tokenizer_bench(const std::vector<std::string>& argv)
{
    const cli::Args args(argv, {"text", "tokenizer", "reps", "reference"}, {});
    const std::string text_path = args.require("text");
    const std::filesystem::path text_dir = std::filesystem::path(text_path).parent_path();
    const std::string tok_path = args.get("tokenizer").value_or(text_dir.empty() ? "." : text_dir.string());
    const long long reps = args.get_int("reps", 5);
    if (reps < 1) throw cli::UsageError("--reps must be at least 1");
    std::string ref_path = args.get("reference").value_or("");
    if (ref_path.empty() && std::filesystem::exists(text_dir / "bench_reference.json"))
        ref_path = (text_dir / "bench_reference.json").string();

    const std::string text = read_file(text_path);
    const std::vector<std::string> docs = split_documents(text);
    const double mb = static_cast<double>(text.size()) / 1e6;
    std::printf("tokenizer bench: %s (%zu bytes, %zu ~4 KB documents), tokenizer %s, %lld reps, 1 thread\n",
                text_path.c_str(), text.size(), docs.size(), tok_path.c_str(), reps);

    std::vector<double> whole_s, docs_s, load_s, whole_cpu_s, docs_cpu_s;
    std::vector<std::uint32_t> ids;
    std::size_t doc_tokens = 0;
    using clock = std::chrono::steady_clock;
    for (long long r = 0; r < reps; ++r) {
        // A fresh tokenizer per run, as the reference measured: its piece cache starts cold.
        auto t0 = clock::now();
        Tokenizer tok = Tokenizer::load(tok_path);
        auto t1 = clock::now();
        const double c1 = thread_cpu_seconds();
        ids = tok.encode(text, false);
        const double c2 = thread_cpu_seconds();
        auto t2 = clock::now();
        Tokenizer tok_docs = Tokenizer::load(tok_path);
        auto t3 = clock::now();
        const double c3 = thread_cpu_seconds();
        doc_tokens = 0;
        for (const std::string& d : docs) doc_tokens += tok_docs.encode(d, false).size();
        const double c4 = thread_cpu_seconds();
        auto t4 = clock::now();
        whole_cpu_s.push_back(c2 - c1);
        docs_cpu_s.push_back(c4 - c3);
        load_s.push_back(std::chrono::duration<double>(t1 - t0).count());
        whole_s.push_back(std::chrono::duration<double>(t2 - t1).count());
        docs_s.push_back(std::chrono::duration<double>(t4 - t3).count());
    }

    nlohmann::json ref;
    if (!ref_path.empty()) ref = nlohmann::json::parse(read_file(ref_path));
    const std::string sha = ids_sha256(ids);
    auto report = [&](const char* mode, const char* clock_name, const std::vector<double>& secs, std::size_t tokens) {
        const Stats s = stats(secs);
        const double ref_mbps = reference_mbps(ref, mode);
        std::printf("  %-5s %-4s median %.3f s  %7.2f MB/s  %9.0f tokens/s  (runs %.3f..%.3f s)", mode, clock_name,
                    s.median, mb / s.median, static_cast<double>(tokens) / s.median, s.min, s.max);
        if (ref_mbps > 0) std::printf("  %.1fx the reference (%.2f MB/s)", mb / s.median / ref_mbps, ref_mbps);
        std::printf("\n");
    };
    report("whole", "wall", whole_s, ids.size());
    report("whole", "cpu", whole_cpu_s, ids.size());
    report("docs", "wall", docs_s, doc_tokens);
    report("docs", "cpu", docs_cpu_s, doc_tokens);
    const Stats load = stats(load_s);
    std::printf("  load  median %.3f s (not included above)\n", load.median);
    std::printf("  tokens %zu, ids sha256 %s\n", ids.size(), sha.c_str());
    if (ref.contains("ids_sha256_u32le")) {
        const bool ok = ref["ids_sha256_u32le"].get<std::string>() == sha &&
                        ref.value("tokens_add_special_tokens_false", std::size_t{0}) == ids.size();
        std::printf("  check against %s: %s\n", ref_path.c_str(), ok ? "OK (identical ids)" : "MISMATCH");
        if (!ok) return 1;
    }
    return 0;
}

}  // namespace

const Command kTokenizerCommand = {
    "tokenizer", "--text FILE [--tokenizer DIR_OR_FILE] [--reps N] [--reference bench_reference.json]",
    "encode throughput (MB/s, tokens/s; whole text and ~4 KB documents) with the ids' SHA-256 check",
    run_tokenizer_bench};

}  // namespace moelens::bench
