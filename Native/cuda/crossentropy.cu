// Fused softmax + cross-entropy per row with an ignore index (Native/Backend.CrossEntropy.cs). One block per row;
// the exponentials are float32, their sum float64, like the CPU backend.
#include "common.cuh"

// The row maximum and sum_j exp(row[j] - max) in float64 (block-wide, fixed order).
__device__ __forceinline__ void normaliser(const float* row, int classes, float* floatScratch, double* doubleScratch, float* max, double* sum) {
    // fmaxf skips NaN, but a NaN logit still makes the sum, hence the loss, NaN.
    float m = -INFINITY;
    for (int j = threadIdx.x; j < classes; j += blockDim.x) m = fmaxf(m, row[j]);
    m = block_max(m, floatScratch);
    double s = 0.0;
    for (int j = threadIdx.x; j < classes; j += blockDim.x) s += (double)expf(row[j] - m);
    *max = m;
    *sum = block_sum(s, doubleScratch);
}

// losses[r] = log(sum exp(row - max)) + max - row[target] (0 for an ignored row).
// Launched with up to 1024 threads per block: the bound keeps the JIT within 64 registers per thread.
extern "C" __global__ void __launch_bounds__(DSLM_MAX_THREADS) cross_entropy_forward(float* losses, const float* logits, const int* targets, int classes, int ignoreIndex) {
    __shared__ float floatScratch[DSLM_MAX_THREADS / DSLM_WARP];
    __shared__ double doubleScratch[DSLM_MAX_THREADS / DSLM_WARP];
    const long long r = blockIdx.x;
    const int target = targets[r];
    if (target == ignoreIndex) {
        if (threadIdx.x == 0) losses[r] = 0.0f;
        return;
    }
    const float* row = logits + r * classes;
    float max;
    double sum;
    normaliser(row, classes, floatScratch, doubleScratch, &max, &sum);
    if (threadIdx.x == 0) losses[r] = (float)(log(sum) + ((double)max - (double)row[target]));
}

// gradLogits[r] += g (softmax(row) - onehot(target)), g = gradLosses[r]; ignored rows get nothing. The target
// element is formed in float64 as g (e_t - sum) / sum, since p_t - 1 cancels in float32 when p_t nears 1.
extern "C" __global__ void __launch_bounds__(DSLM_MAX_THREADS) cross_entropy_backward(float* gradLogits, const float* gradLosses, const float* logits, const int* targets,
                                                  int classes, int ignoreIndex) {
    __shared__ float floatScratch[DSLM_MAX_THREADS / DSLM_WARP];
    __shared__ double doubleScratch[DSLM_MAX_THREADS / DSLM_WARP];
    const long long r = blockIdx.x;
    const int target = targets[r];
    if (target == ignoreIndex) return;
    const float* row = logits + r * classes;
    float* gradient = gradLogits + r * classes;
    float max;
    double sum;
    normaliser(row, classes, floatScratch, doubleScratch, &max, &sum);
    const float g = gradLosses[r], scale = (float)(g / sum);
    for (int j = threadIdx.x; j < classes; j += blockDim.x) {
        if (j == target) gradient[j] = (float)(gradient[j] + g * (exp((double)row[j] - max) - sum) / sum);
        else gradient[j] = fmaf(expf(row[j] - max), scale, gradient[j]);
    }
}
