#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/rope_yarn.h"

namespace moelens::cuda {
namespace {

// The reference forms the angle in f32 (outer(t, freqs)) and the host twin takes
// cos/sin of that f32 angle in double; doing the same here makes the tables agree
// to the last bit or two instead of drifting with the position.
__global__ void rope_cos_sin_kernel(const float* inv_freq, int half, float scale, const int* positions, int n_tokens,
                                    float* cos_out, float* sin_out)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= half * n_tokens) return;
    const int t = i / half, f = i % half;
    const float angle = static_cast<float>(positions[t]) * inv_freq[f];
    cos_out[i] = static_cast<float>(::cos(static_cast<double>(angle))) * scale;
    sin_out[i] = static_cast<float>(::sin(static_cast<double>(angle))) * scale;
}

// One thread per pair; DeepSeek's reference rotates adjacent pairs
// (view_as_complex), not the two halves as Llama's rotate_half does.
__global__ void rope_interleaved_kernel(float* x, int n_tokens, int token_stride, int n_vectors, int stride, int half,
                                        const float* cos_t, const float* sin_t)
{
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    const long long per_token = static_cast<long long>(n_vectors) * half;
    if (i >= per_token * n_tokens) return;
    const int t = static_cast<int>(i / per_token);
    const int v = static_cast<int>((i % per_token) / half);
    const int p = static_cast<int>(i % half);
    float* q = x + static_cast<long long>(t) * token_stride + static_cast<long long>(v) * stride + 2 * p;
    const float c = cos_t[t * half + p], s = sin_t[t * half + p];
    const float a = q[0], b = q[1];
    q[0] = a * c - b * s;
    q[1] = a * s + b * c;
}

}  // namespace

void rope_cos_sin(const float* inv_freq, int half, float scale, const int* positions, int n_tokens, float* cos,
                  float* sin, cudaStream_t stream)
{
    const int n = half * n_tokens;
    if (n <= 0) return;
    rope_cos_sin_kernel<<<(n + 255) / 256, 256, 0, stream>>>(inv_freq, half, scale, positions, n_tokens, cos, sin);
    check_launch("rope_cos_sin_kernel");
}

void rope_interleaved(float* x, int n_tokens, int token_stride, int n_vectors, int stride, int dr, const float* cos,
                      const float* sin, cudaStream_t stream)
{
    const long long n = static_cast<long long>(n_tokens) * n_vectors * (dr / 2);
    if (n <= 0) return;
    rope_interleaved_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(
        x, n_tokens, token_stride, n_vectors, stride, dr / 2, cos, sin);
    check_launch("rope_interleaved_kernel");
}

}  // namespace moelens::cuda
