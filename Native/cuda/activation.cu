// Element-wise activations, forward and backward (Native/Backend.Activation.cs). The GeLUs are evaluated in
// float64 and rounded once, like the CPU backend, so they stay accurate in the tails.
#include "common.cuh"

// ActivationKind in Native/ActivationFunction.cs.
#define KIND_RELU 0
#define KIND_GELU_ERF 1
#define KIND_GELU_TANH 2
#define KIND_SCALED_LEAKY_RELU 3

// GPT-2's 2u = x (A + B x^2): A = 2 sqrt(2/pi), B = A * 0.044715.
#define GELU_TANH_A 1.5957691216057308
#define GELU_TANH_B (GELU_TANH_A * 0.044715)
#define INVERSE_SQRT2 0.70710678118654752
#define INVERSE_SQRT2PI 0.39894228040143268

// Phi(x) = erfc(-x / sqrt 2) / 2: erfc keeps the lower tail's relative accuracy where 1 + erf(x) would cancel.
__device__ __forceinline__ double normal_cdf(double x) { return 0.5 * erfc(-x * INVERSE_SQRT2); }

// sigmoid(2u) = 1 / (1 + exp(-2u)); an overflowing exp gives exactly 0.
__device__ __forceinline__ double gelu_tanh_sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x * (GELU_TANH_A + GELU_TANH_B * x * x)));
}

// output = f(input); output may be input itself (each element reads only itself). For the scaled leaky ReLU,
// `positive` and `negative` are its two slopes sqrt(2/(1+a^2)) and a sqrt(2/(1+a^2)), formed in float64 on the host.
extern "C" __global__ void activation_forward(float* output, const float* input, long long count, int kind, float positive, float negative) {
    DSLM_FOR_EACH(i, count) {
        const float x = input[i];
        float y;
        switch (kind) {
        case KIND_RELU: y = (x > 0.0f || x != x) ? x : 0.0f; break;   // max(x, 0) that keeps NaN
        case KIND_GELU_ERF: y = (float)((double)x * normal_cdf(x)); break;
        case KIND_GELU_TANH: y = (float)((double)x * gelu_tanh_sigmoid(x)); break;
        default: y = x * (x >= 0.0f ? positive : negative); break;
        }
        output[i] = y;
    }
}

// gradInput += f'(input) * gradOutput. ReLU's derivative at 0 is 0 and leaky ReLU's kink takes the negative slope,
// as in PyTorch and the CPU backend.
extern "C" __global__ void activation_backward(float* gradInput, const float* gradOutput, const float* input, long long count,
                                               int kind, float positive, float negative) {
    DSLM_FOR_EACH(i, count) {
        const float x = input[i], g = gradOutput[i];
        float d;
        switch (kind) {
        case KIND_RELU: d = x > 0.0f ? g : 0.0f; break;
        case KIND_GELU_ERF: {
            // d/dx x Phi(x) = Phi(x) + x phi(x).
            const double wide = x, pdf = INVERSE_SQRT2PI * exp(-0.5 * wide * wide);
            d = (float)((double)g * fma(wide, pdf, normal_cdf(wide)));
            break;
        }
        case KIND_GELU_TANH: {
            // d/dx x s(x) = s + x (2u)' s (1 - s), s = sigmoid(2u).
            const double wide = x, s = gelu_tanh_sigmoid(wide), slope = fma(3.0 * GELU_TANH_B, wide * wide, GELU_TANH_A);
            d = (float)((double)g * fma(wide * slope, s * (1.0 - s), s));
            break;
        }
        default: d = g * (x > 0.0f ? positive : negative); break;
        }
        gradInput[i] += d;
    }
}
