// The residual combine fused with layer norm, forward and backward, and the plain residual combine
// (Native/Backend.LayerNorm.cs). One block per row for the forward; the backward walks a fixed number of row
// chunks, one block each, so the weight/bias gradient partials and their later column sum are deterministic.
#include "common.cuh"

// s = lambda x + beta branch (when branch is given; written to residual), then
// normOutput = (s - mean) rstd weight + bias with the biased variance from two passes. Thread t owns channels
// t, t + blockDim.x, ..., so each thread reads back only what it wrote itself.
extern "C" __global__ void residual_layernorm_forward(float* residual, float* normOutput, float* mean, float* rstd, const float* x,
                                                      const float* branch, float lambda, float beta, const float* weight,
                                                      const float* bias, float epsilon, int channels) {
    __shared__ float scratch[DSLM_MAX_THREADS / DSLM_WARP];
    const long long at = (long long)blockIdx.x * channels;
    const float* input = x + at;
    if (branch != nullptr) {
        for (int j = threadIdx.x; j < channels; j += blockDim.x)
            residual[at + j] = fmaf(x[at + j], lambda, branch[at + j] * beta);
        input = residual + at;
    }
    float sum = 0.0f;
    for (int j = threadIdx.x; j < channels; j += blockDim.x) sum += input[j];
    const float rowMean = block_sum(sum, scratch) / channels;
    float squares = 0.0f;
    for (int j = threadIdx.x; j < channels; j += blockDim.x) {
        const float d = input[j] - rowMean;
        squares = fmaf(d, d, squares);
    }
    const float rowRstd = 1.0f / sqrtf(block_sum(squares, scratch) / channels + epsilon);
    for (int j = threadIdx.x; j < channels; j += blockDim.x) {
        float y = (input[j] - rowMean) * rowRstd;
        if (weight != nullptr) y *= weight[j];
        if (bias != nullptr) y += bias[j];
        normOutput[at + j] = y;
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = rowMean;
        rstd[blockIdx.x] = rowRstd;
    }
}

// Block b handles rows [b rows / chunks, (b + 1) rows / chunks). With xhat = (s - mean) rstd and g = dy weight:
// ds = rstd (g - mean(g) - xhat mean(g xhat)) + gradResidual; gradX += lambdaX ds, gradBranch += beta ds.
// partials (or null) is [chunks, 2 channels]: this chunk's sum of dy xhat (gradWeight) then of dy (gradBias), each
// channel owned by one thread and summed in row order. gradX and gradBranch may be the same view (the same thread
// adds both, in order).
extern "C" __global__ void residual_layernorm_backward(float* gradX, float* gradBranch, float* partials, const float* gradNormOutput,
                                                       const float* gradResidual, const float* input, const float* mean,
                                                       const float* rstd, const float* weight, float lambdaX, float beta,
                                                       int rows, int channels) {
    __shared__ float scratch[DSLM_MAX_THREADS / DSLM_WARP];
    const int chunks = gridDim.x;
    const int start = (int)((long long)blockIdx.x * rows / chunks), end = (int)((long long)(blockIdx.x + 1) * rows / chunks);
    float* partialWeight = partials == nullptr ? nullptr : partials + (long long)blockIdx.x * 2 * channels;
    if (partialWeight != nullptr)
        for (int j = threadIdx.x; j < 2 * channels; j += blockDim.x) partialWeight[j] = 0.0f;
    for (int r = start; r < end; r++) {
        const long long at = (long long)r * channels;
        const float rowMean = mean[r], rowRstd = rstd[r];
        float sumG = 0.0f, sumGXhat = 0.0f;
        for (int j = threadIdx.x; j < channels; j += blockDim.x) {
            const float xhat = (input[at + j] - rowMean) * rowRstd, dy = gradNormOutput[at + j];
            const float g = weight == nullptr ? dy : dy * weight[j];
            sumG += g;
            sumGXhat = fmaf(g, xhat, sumGXhat);
            if (partialWeight != nullptr) {
                partialWeight[j] = fmaf(dy, xhat, partialWeight[j]);
                partialWeight[channels + j] += dy;
            }
        }
        const float meanG = block_sum(sumG, scratch) / channels;
        const float meanGXhat = block_sum(sumGXhat, scratch) / channels;
        for (int j = threadIdx.x; j < channels; j += blockDim.x) {
            const float xhat = (input[at + j] - rowMean) * rowRstd, dy = gradNormOutput[at + j];
            const float g = weight == nullptr ? dy : dy * weight[j];
            float ds = fmaf(-xhat, meanGXhat, g - meanG) * rowRstd;
            if (gradResidual != nullptr) ds += gradResidual[at + j];
            if (gradX != nullptr) gradX[at + j] = fmaf(ds, lambdaX, gradX[at + j]);
            if (gradBranch != nullptr) gradBranch[at + j] = fmaf(ds, beta, gradBranch[at + j]);
        }
    }
}

// output = lambda x + beta branch (DSLM's residual, dslm-theory 2.9), one rounding of the fused form.
extern "C" __global__ void residual_forward(float* output, const float* x, const float* branch, float lambda, float beta, long long count) {
    DSLM_FOR_EACH(i, count) output[i] = fmaf(x[i], lambda, branch[i] * beta);
}

// gradX += lambda gradOutput, gradBranch += beta gradOutput (either may be null, or both the same view). Also the
// plain accumulate `gradX += gradOutput` with lambda = 1 (fmaf(g, 1, a) is exactly a + g).
extern "C" __global__ void residual_backward(float* gradX, float* gradBranch, const float* gradOutput, float lambda, float beta, long long count) {
    DSLM_FOR_EACH(i, count) {
        const float g = gradOutput[i];
        if (gradX != nullptr) gradX[i] = fmaf(g, lambda, gradX[i]);
        if (gradBranch != nullptr) gradBranch[i] = fmaf(g, beta, gradBranch[i]);
    }
}
