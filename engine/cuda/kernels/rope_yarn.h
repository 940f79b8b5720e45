#pragma once
#include <cuda_runtime_api.h>

namespace moelens::cuda {

// cos/sin tables for n_tokens positions: cos[t][i] = cos(pos[t] * inv_freq[i]) * scale,
// i < half (= dr/2). inv_freq already carries YaRN's interpolation and `scale` its
// mscale ratio (runtime/rope_table.cpp computes both on the host once per model).
// Twin: rope_cos_sin in runtime/rope_table.cpp.
void rope_cos_sin(const float* inv_freq, int half, float scale, const int* positions, int n_tokens, float* cos,
                  float* sin, cudaStream_t stream);

// Rotates, for each token t < n_tokens, n_vectors vectors of dr floats (vector v of
// token t starts at x + t*token_stride + v*stride) by the interleaved pairs
// (x[2i], x[2i+1]) with cos[t][i], sin[t][i]. Twin: ref::rope (one token at a time).
void rope_interleaved(float* x, int n_tokens, int token_stride, int n_vectors, int stride, int dr, const float* cos,
                      const float* sin, cudaStream_t stream);

}  // namespace moelens::cuda
