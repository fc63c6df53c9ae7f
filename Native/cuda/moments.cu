// Moment statistics of activations [batch, tokens, channels] (Native/Backend.Moments.cs), in float64. The two
// passes of the CPU backend: token means, then per batch row the centred sums Q = sum_c (sum_t x - m_t)^2 and
// D = sum_c sum_t (x - m_t)^2; the host finishes mean, variance and correlation from them.
#include "common.cuh"

// means[t] = mean over batch and channels of x[:, t, :]; one block per token.
extern "C" __global__ void token_means(double* means, const float* x, int batch, int tokens, int channels) {
    __shared__ double scratch[DSLM_MAX_THREADS / DSLM_WARP];
    const int t = blockIdx.x;
    const long long samples = (long long)batch * channels;
    double sum = 0.0;
    for (long long s = threadIdx.x; s < samples; s += blockDim.x) {
        const long long b = s / channels, c = s % channels;
        sum += x[(b * tokens + t) * channels + c];
    }
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) means[t] = sum / (double)samples;
}

// partials[2 b] = Q and partials[2 b + 1] = D of batch row b; one block per batch row, a thread per channel.
extern "C" __global__ void centred_sums(double* partials, const float* x, const double* means, int tokens, int channels) {
    __shared__ double scratch[DSLM_MAX_THREADS / DSLM_WARP];
    const long long b = blockIdx.x;
    double across = 0.0, squares = 0.0;
    for (int c = threadIdx.x; c < channels; c += blockDim.x) {
        double column = 0.0;
        for (int t = 0; t < tokens; t++) {
            const double centred = (double)x[(b * tokens + t) * channels + c] - means[t];
            column += centred;
            squares = fma(centred, centred, squares);
        }
        across = fma(column, column, across);
    }
    across = block_sum(across, scratch);
    squares = block_sum(squares, scratch);
    if (threadIdx.x == 0) {
        partials[2 * b] = across;
        partials[2 * b + 1] = squares;
    }
}
