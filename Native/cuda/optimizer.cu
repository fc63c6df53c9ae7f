// AdamW, the global gradient norm and scaling (Native/Backend.Optimizer.cs).
#include "common.cuh"

// One AdamW step per element with the CPU backend's operations and roundings (bit-identical to it): the bias
// corrections 1 / (1 - beta^t) come from the host, formed in float64 and rounded once, and the last update uses
// __fmul_rn / __fsub_rn so nvcc cannot contract it into one fused multiply-add.
extern "C" __global__ void adamw(float* parameters, const float* gradients, float* firstMoment, float* secondMoment, long long count,
                                 float beta1, float beta2, float oneMinusBeta1, float oneMinusBeta2, float correction1,
                                 float correction2, float epsilon, float learningRate, float decay, float gradientScale) {
    DSLM_FOR_EACH(i, count) {
        const float g = gradients[i] * gradientScale;
        const float m = fmaf(beta1, firstMoment[i], oneMinusBeta1 * g);
        const float v = fmaf(beta2, secondMoment[i], oneMinusBeta2 * (g * g));
        const float step = (m * correction1) / (sqrtf(v * correction2) + epsilon);
        const float p = parameters[i];
        parameters[i] = __fsub_rn(p, __fmul_rn(learningRate, fmaf(decay, p, step)));
        firstMoment[i] = m;
        secondMoment[i] = v;
    }
}

// Pass 1 of a sum of squares: block b writes partials[b], the float64 sum of x^2 over its grid-stride share. The
// grid size is chosen from the length alone, so the partials are the same on every run.
extern "C" __global__ void sum_squares_partials(double* partials, const float* x, long long count) {
    __shared__ double scratch[DSLM_MAX_THREADS / DSLM_WARP];
    double sum = 0.0;
    DSLM_FOR_EACH(i, count) {
        const double value = x[i];
        sum = fma(value, value, sum);
    }
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// Pass 2: total[0] += the partials summed in a fixed order (one block). Tensors are added one after another on
// the stream, so a global norm over many tensors is deterministic too.
extern "C" __global__ void sum_partials_into(double* total, const double* partials, int count) {
    __shared__ double scratch[DSLM_MAX_THREADS / DSLM_WARP];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) total[0] += sum;
}

// tensor *= factor.
extern "C" __global__ void scale(float* tensor, long long count, float factor) {
    DSLM_FOR_EACH(i, count) tensor[i] *= factor;
}
