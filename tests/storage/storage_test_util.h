#pragma once
// Plain helpers for the storage suites: a temporary folder and synthetic traces.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "moelens_storage/records.h"

namespace moelens::storage::test {

class TempDir {
public:
    TempDir()
    {
        std::string templ = (std::filesystem::temp_directory_path() / "moelens-storage-XXXXXX").string();
        if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed for " + templ);
        m_path = templ;
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::permissions(m_path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (m_path / name).string(); }
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

// A deterministic trace: top_k distinct experts per row, weights in (0, 1) scaled by
// `scale` (DeepSeek-V2 multiplies routed weights by routed_scaling_factor).
inline RoutingTrace make_trace(int n_tokens, int n_layers = 26, int top_k = 6, int n_experts = 64, unsigned seed = 1,
                               int groups_per_row = 0, bool texts = true, float scale = 1.0f)
{
    RoutingTrace t;
    t.n_experts = static_cast<std::uint16_t>(n_experts);
    t.top_k = static_cast<std::uint8_t>(top_k);
    t.groups_per_row = static_cast<std::uint8_t>(groups_per_row);
    t.n_prompt_tokens = static_cast<std::uint32_t>(n_tokens / 4);
    for (int l = 0; l < n_layers; ++l) t.layers.push_back(static_cast<std::uint16_t>(l + 1));
    std::mt19937 rng(seed);
    for (int i = 0; i < n_tokens; ++i) {
        std::vector<std::uint16_t> experts;
        std::vector<float> weights;
        std::vector<std::uint8_t> groups;
        for (int l = 0; l < n_layers; ++l) {
            const int start = static_cast<int>(rng() % static_cast<unsigned>(n_experts));
            for (int k = 0; k < top_k; ++k) {
                experts.push_back(static_cast<std::uint16_t>((start + k * 7) % n_experts));
                weights.push_back(scale * std::uniform_real_distribution<float>(0.01f, 0.99f)(rng));
            }
            for (int g = 0; g < groups_per_row; ++g) groups.push_back(static_cast<std::uint8_t>((start + g) % 8));
        }
        t.append_token(static_cast<std::int32_t>(rng() % 102400), texts ? "tok" + std::to_string(i) + " ✓" : "",
                       experts, weights, groups);
    }
    if (!texts) t.token_texts.clear();
    return t;
}

inline std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace moelens::storage::test
