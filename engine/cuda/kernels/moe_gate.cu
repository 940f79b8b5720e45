#include <cfloat>
#include <string>

#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/moe_gate.h"
#include "cuda/kernels/reduce.cuh"

namespace moelens::cuda {
namespace {

constexpr int kMaxExperts = 1024;
constexpr int kMaxGroups = 64;

// Lane-wise argmax over v[0, n) where allowed(i), ties to the lowest index,
// then reduced across the warp with the same rule: the CPU's strict ">" scan.
template <class Allowed>
__device__ int warp_argmax(const float* v, int n, const Allowed& allowed)
{
    float best = -FLT_MAX;
    int best_i = -1;
    for (int i = threadIdx.x; i < n; i += 32)
        if (allowed(i) && (best_i < 0 || v[i] > best)) {
            best = v[i];
            best_i = i;
        }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, best, o);
        const int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
        const bool take = oi >= 0 && (best_i < 0 || ov > best || (ov == best && oi < best_i));
        if (take) {
            best = ov;
            best_i = oi;
        }
    }
    return best_i;
}

// One warp per token: k is at most 8 in released models, so k warp-wide max
// scans beat a sort, as on the CPU.
__global__ void moe_gate_topk_kernel(const float* logits, int n_tokens, GateParams p, float* probs, int* ids,
                                     float* weights)
{
    __shared__ float s_prob[kMaxExperts];
    __shared__ unsigned char s_allowed[kMaxExperts];
    __shared__ float s_group[kMaxGroups];
    const int t = blockIdx.x;
    if (t >= n_tokens) return;
    const int E = p.n_experts, lane = threadIdx.x;
    const float* lg = logits + static_cast<std::size_t>(t) * E;

    // softmax with the max subtracted, in f32 like the CPU kernel
    float m = -FLT_MAX;
    for (int e = lane; e < E; e += 32) m = fmaxf(m, lg[e]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int e = lane; e < E; e += 32) {
        s_prob[e] = expf(lg[e] - m);
        sum += s_prob[e];
    }
    sum = warp_sum(sum);
    const float inv = 1.0f / sum;
    for (int e = lane; e < E; e += 32) {
        s_prob[e] *= inv;
        probs[static_cast<std::size_t>(t) * E + e] = s_prob[e];
        s_allowed[e] = 1;
    }
    __syncwarp();

    if (p.group_limited && p.n_group > 1) {
        const int per = E / p.n_group;
        for (int g = lane; g < p.n_group; g += 32) {
            float gm = s_prob[g * per];
            for (int e = 1; e < per; ++e) gm = fmaxf(gm, s_prob[g * per + e]);
            s_group[g] = gm;
        }
        for (int e = lane; e < E; e += 32) s_allowed[e] = 0;
        __syncwarp();
        for (int j = 0; j < p.topk_group; ++j) {
            const int g = warp_argmax(s_group, p.n_group, [](int) { return true; });
            __syncwarp();
            for (int e = lane; e < per; e += 32) s_allowed[g * per + e] = 1;
            if (lane == 0) s_group[g] = -1.0f;  // probabilities are >= 0: -1 marks "taken", as on the CPU
            __syncwarp();
        }
    }

    int* out_ids = ids + static_cast<std::size_t>(t) * p.top_k;
    float* out_w = weights + static_cast<std::size_t>(t) * p.top_k;
    float wsum = 0.0f;
    for (int j = 0; j < p.top_k; ++j) {
        const int e = warp_argmax(s_prob, E, [&](int i) { return s_allowed[i] != 0; });
        __syncwarp();
        if (lane == 0) {
            out_ids[j] = e;
            out_w[j] = s_prob[e];
            s_allowed[e] = 0;
        }
        wsum += s_prob[e];  // the same sequential order on every lane as the CPU's sum
        __syncwarp();
    }
    if (lane == 0) {
        for (int j = 0; j < p.top_k; ++j)
            out_w[j] = (p.norm_topk_prob && p.top_k > 1) ? out_w[j] / (wsum + 1e-20f) : out_w[j] * p.routed_scaling_factor;
    }
}

}  // namespace

void moe_gate_topk(const float* logits, int n_tokens, const GateParams& p, float* probs, int* ids, float* weights,
                   cudaStream_t stream)
{
    if (p.n_experts <= 0 || p.n_experts > kMaxExperts || p.top_k <= 0 || p.top_k > p.n_experts)
        throw CudaError("moe_gate_topk_kernel: n_experts " + std::to_string(p.n_experts) + " / top_k " +
                        std::to_string(p.top_k) + " outside 1..1024 / 1..n_experts");
    if (p.group_limited && (p.n_group < 1 || p.n_group > kMaxGroups || p.n_experts % p.n_group != 0 ||
                            p.topk_group < 1 || p.topk_group > p.n_group ||
                            p.top_k > p.topk_group * (p.n_experts / p.n_group)))
        throw CudaError("moe_gate_topk_kernel: n_group " + std::to_string(p.n_group) + " / topk_group " +
                        std::to_string(p.topk_group) + " do not divide the experts or leave fewer than top_k");
    if (n_tokens <= 0) return;
    moe_gate_topk_kernel<<<n_tokens, 32, 0, stream>>>(logits, n_tokens, p, probs, ids, weights);
    check_launch("moe_gate_topk_kernel");
}

}  // namespace moelens::cuda
