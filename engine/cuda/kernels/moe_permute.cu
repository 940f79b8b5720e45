#include <string>

#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/moe_permute.h"

namespace moelens::cuda {
namespace {

constexpr int kMaxExperts = 1024;

// One block: thread e owns expert e. It counts its entries, the block scans the
// counts, then the thread walks the ids again handing out its slots in (t, j)
// order. The walk is O(tokens * k) per thread (all threads read the same id, a
// broadcast); at 4096 tokens x 6 that is tens of microseconds, small beside the
// expert GEMMs, and it keeps the order deterministic without a sort.
__global__ void moe_permute_plan_kernel(const int* ids, int n_entries, int n_experts, int* offsets, int* slot_of,
                                        int* token_of_slot, int top_k)
{
    __shared__ int s_count[kMaxExperts + 1];
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
        int c = 0;
        for (int i = 0; i < n_entries; ++i) c += ids[i] == e;
        s_count[e] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int run = 0;
        for (int e = 0; e < n_experts; ++e) {
            const int c = s_count[e];
            s_count[e] = run;
            offsets[e] = run;
            run += c;
        }
        offsets[n_experts] = run;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
        int next = s_count[e];
        for (int i = 0; i < n_entries; ++i)
            if (ids[i] == e) {
                slot_of[i] = next;
                token_of_slot[next] = i / top_k;
                ++next;
            }
    }
}

__global__ void moe_gather_rows_kernel(const float* x, const int* token_of_slot, int cols, float* x_perm)
{
    const int s = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < cols)
        x_perm[static_cast<std::size_t>(s) * cols + c] = x[static_cast<std::size_t>(token_of_slot[s]) * cols + c];
}

__global__ void moe_combine_kernel(const float* y_perm, const int* slot_of, const float* weights, int top_k, int cols,
                                   float* out, bool accumulate)
{
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float acc = accumulate ? out[static_cast<std::size_t>(t) * cols + c] : 0.0f;
    for (int j = 0; j < top_k; ++j) {
        const int e = t * top_k + j;
        acc += weights[e] * y_perm[static_cast<std::size_t>(slot_of[e]) * cols + c];
    }
    out[static_cast<std::size_t>(t) * cols + c] = acc;
}

}  // namespace

void moe_permute_plan(const int* ids, int n_tokens, int top_k, int n_experts, int* expert_offsets, int* slot_of,
                      int* token_of_slot, cudaStream_t stream)
{
    if (n_experts <= 0 || n_experts > kMaxExperts)
        throw CudaError("moe_permute_plan_kernel: n_experts " + std::to_string(n_experts) + " outside 1..1024");
    moe_permute_plan_kernel<<<1, 1024, 0, stream>>>(ids, n_tokens * top_k, n_experts, expert_offsets, slot_of,
                                                    token_of_slot, top_k);
    check_launch("moe_permute_plan_kernel");
}

void moe_gather_rows(const float* x, const int* token_of_slot, int n_slots, int cols, float* x_perm,
                     cudaStream_t stream)
{
    if (n_slots <= 0 || cols <= 0) return;
    moe_gather_rows_kernel<<<dim3((cols + 255) / 256, n_slots), 256, 0, stream>>>(x, token_of_slot, cols, x_perm);
    check_launch("moe_gather_rows_kernel");
}

void moe_combine(const float* y_perm, const int* slot_of, const float* weights, int n_tokens, int top_k, int cols,
                 float* out, bool accumulate, cudaStream_t stream)
{
    if (n_tokens <= 0 || cols <= 0) return;
    moe_combine_kernel<<<dim3((cols + 255) / 256, n_tokens), 256, 0, stream>>>(y_perm, slot_of, weights, top_k, cols,
                                                                               out, accumulate);
    check_launch("moe_combine_kernel");
}

}  // namespace moelens::cuda
