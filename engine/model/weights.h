#pragma once
// The checkpoint's tensors, by Hugging Face name, bound to typed views into the
// mapped files. Each expected tensor is declared with its expected shape; loading
// fails naming the file and tensor when one is missing, misshapen or of an
// unsupported dtype.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "moelens/model.h"
#include "moelens/safetensors.h"

namespace moelens {

// model.safetensors, or the shards listed in model.safetensors.index.json.
class Checkpoint {
public:
    explicit Checkpoint(const std::filesystem::path& dir);

    struct Entry {
        const SafetensorsFile* file = nullptr;
        const TensorInfo* tensor = nullptr;
    };
    // Throws ModelError naming where the tensor should have been.
    Entry at(const std::string& name) const;
    const std::vector<SafetensorsFile>& files() const { return m_files; }
    std::uint64_t bytes_on_disk() const;
    // Throws ModelError naming the first weight file that was cut short on disk
    // while mapped and read past its new end since (util/mapping_guard.h): what
    // was computed from it is wrong. Cheap: one counter per file.
    void check_unchanged() const;
    // Copies [p, p + n) of a bound view into dst by reading the weight file that
    // maps it (SafetensorsFile::read_mapped); a plain copy when no file maps it.
    void read(const std::byte* p, std::size_t n, std::byte* dst) const;
    std::size_t tensor_count() const { return m_entries.size(); }

private:
    std::string m_where;  // model.safetensors or the index file, for messages
    std::vector<SafetensorsFile> m_files;
    std::map<std::string, Entry> m_entries;
};

struct ExpectedTensor {
    std::string name;
    std::vector<std::int64_t> shape;
};
// Every tensor a config needs, with its shape (docs/engine.md lists them).
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c);

// gate/up [width, hidden], down [hidden, width]: a SiLU-gated FFN (dense layer,
// one expert, or the shared experts fused into one).
struct FfnWeights {
    WeightView gate;
    WeightView up;
    WeightView down;
};

struct LayerWeights {
    std::vector<float> input_norm;           // [hidden] (norm vectors are widened to f32; they are tiny)
    std::vector<float> post_attention_norm;  // [hidden]
    WeightView q_proj;                       // [H*(dn+dr), hidden]   when q_lora_rank == 0
    WeightView q_a_proj;                     // [q_lora, hidden]      otherwise
    std::vector<float> q_a_norm;             // [q_lora]
    WeightView q_b_proj;                     // [H*(dn+dr), q_lora]
    WeightView kv_a_proj;                    // [kv_lora + dr, hidden]
    std::vector<float> kv_a_norm;            // [kv_lora]
    WeightView kv_b_proj;                    // [H*(dn+dv), kv_lora]: per head W_UK (dn rows) then W_UV (dv rows)
    WeightView o_proj;                       // [hidden, H*dv]
    bool moe = false;
    FfnWeights mlp;                          // dense layers
    WeightView gate;                         // [n_routed, hidden]      MoE layers
    std::vector<FfnWeights> experts;         // n_routed
    FfnWeights shared;                       // width moe_inter * n_shared (absent when n_shared == 0)
};

struct ModelWeights {
    WeightView embed;               // [vocab, hidden]
    std::vector<float> final_norm;  // [hidden]
    WeightView lm_head;             // [vocab, hidden] (= embed when tied)
    std::vector<LayerWeights> layers;
};

// Checks every expected tensor against the checkpoint and binds the views.
ModelWeights bind_weights(const ModelConfig& c, const Checkpoint& ckpt);

// Every matrix the forward step streams, with a short name (the int8 cache's
// tensor names: "layers.3.o_proj", "layers.3.experts.7.up", "lm_head"), layer
// by layer as the forward step reaches them. The embedding is not among them: a token reads
// one row of it. `quantizable` is false for kv_b_proj (read per head and
// transposed) and the router, which int8 keeps as stored.
struct NamedMatrix {
    std::string name;
    WeightView* view;
    bool quantizable;
};
std::vector<NamedMatrix> matrices(ModelWeights& w);

// Checks every expected tensor (names, shapes, dtypes) without binding.
void check_weights(const ModelConfig& c, const Checkpoint& ckpt);

}  // namespace moelens
