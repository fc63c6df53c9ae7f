// Attention around cuBLAS (Native/Backend.Attention.cs): the GEMMs S = scale Q K^T, M V, G V^T, dS K and dS^T Q run
// as strided-batched cuBLAS calls over the heads; these kernels do the rest. Rows of the score matrices are
// indexed r = (b * heads + h) * queryTokens + i, each [keyTokens] long.
#include "common.cuh"

// In place over each row of scores (already scale Q K^T): P = softmax(S + bias) over the visible keys (j <= i under
// a causal mask, all otherwise), 0 elsewhere. A row with no finite score (every key masked by a -infinity bias)
// becomes 0 rather than 0/0. One block per row.
extern "C" __global__ void attention_softmax(float* scores, const float* bias, int queryTokens, int keyTokens, int causal) {
    __shared__ float scratch[DSLM_MAX_THREADS / DSLM_WARP];
    const long long r = blockIdx.x;
    const int i = (int)(r % queryTokens), visible = causal ? i + 1 : keyTokens;
    float* row = scores + r * keyTokens;
    const float* biasRow = bias == nullptr ? nullptr : bias + (long long)i * keyTokens;
    float max = -INFINITY;
    bool nan = false;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
        const float s = biasRow == nullptr ? row[j] : row[j] + biasRow[j];
        row[j] = s;
        max = fmaxf(max, s);
        nan |= s != s;
    }
    // fmaxf drops NaN; a NaN score makes the whole row NaN, as on the CPU.
    max = block_max(nan ? INFINITY : max, scratch);
    float sum = 0.0f;
    if (max == -INFINITY) {
        for (int j = threadIdx.x; j < keyTokens; j += blockDim.x) row[j] = 0.0f;
        return;
    }
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
        const float e = expf(row[j] - max);
        row[j] = e;
        sum += e;
    }
    const float inverse = 1.0f / block_sum(sum, scratch);
    for (int j = threadIdx.x; j < keyTokens; j += blockDim.x) row[j] = j < visible ? row[j] * inverse : 0.0f;
}

// Epilogue of the forward over output [batch, tokens, heads * headDim] = P V: o = alpha_h v + beta_h o (the
// Value-SkipInit mix, when mixAlpha is given; tokens equal on both sides then), then o *= rescale[t] (when given).
extern "C" __global__ void attention_mix_rescale(float* output, const float* value, const float* mixAlpha, const float* mixBeta,
                                                 const float* rescale, long long count, int tokens, int heads, int headDim) {
    const int channels = heads * headDim;
    DSLM_FOR_EACH(index, count) {
        float o = output[index];
        if (mixAlpha != nullptr) {
            const int h = (int)(index % channels) / headDim;
            o = fmaf(value[index], mixAlpha[h], mixBeta[h] * o);
        }
        if (rescale != nullptr) o *= rescale[(index / channels) % tokens];
        output[index] = o;
    }
}

// destination[b, t, c] = source[b, t, c] * rescale[t]: the gradient at M V, G = rescale * gradOutput.
extern "C" __global__ void attention_scale_rows(float* destination, const float* source, const float* rescale, long long count, int tokens, int channels) {
    DSLM_FOR_EACH(index, count) destination[index] = source[index] * rescale[(index / channels) % tokens];
}

// gradValue += beta_h (P^T G) + alpha_h G, with P^T G computed by cuBLAS into `product` (mix only).
extern "C" __global__ void attention_value_mix_gradient(float* gradValue, const float* product, const float* grad, const float* mixAlpha,
                                                        const float* mixBeta, long long count, int heads, int headDim) {
    const int channels = heads * headDim;
    DSLM_FOR_EACH(index, count) {
        const int h = (int)(index % channels) / headDim;
        gradValue[index] = fmaf(grad[index], mixAlpha[h], fmaf(product[index], mixBeta[h], gradValue[index]));
    }
}

// In place over each row of dM = G V^T: with r = sum_j dM P over the visible keys, dS = scale beta_h P (dM - r)
// (the softmax backward with dP = beta dM, the score scale folded in for the dQ / dK GEMMs), 0 where masked.
// traces[row] = dM[i, i] (the row's share of trace(dM), with a mix) and weighted[row] = r (its share of
// sum(dM * P)), both read back in a fixed order by attention_mix_gradient. One block per row.
extern "C" __global__ void attention_softmax_backward(float* scores, const float* probabilities, const float* mixBeta, float* traces,
                                                      float* weighted, int heads, int queryTokens, int keyTokens, int causal, float scale) {
    __shared__ float scratch[DSLM_MAX_THREADS / DSLM_WARP];
    const long long r = blockIdx.x;
    const int i = (int)(r % queryTokens), visible = causal ? i + 1 : keyTokens;
    const int h = (int)((r / queryTokens) % heads);
    float* row = scores + r * keyTokens;
    const float* p = probabilities + r * keyTokens;
    // Read before any thread overwrites the row (block_sum's barriers order the two).
    const float diagonal = (threadIdx.x == 0 && traces != nullptr && i < keyTokens) ? row[i] : 0.0f;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) dot = fmaf(row[j], p[j], dot);
    dot = block_sum(dot, scratch);
    const float factor = scale * (mixBeta == nullptr ? 1.0f : mixBeta[h]);
    for (int j = threadIdx.x; j < keyTokens; j += blockDim.x) row[j] = j < visible ? (row[j] - dot) * p[j] * factor : 0.0f;
    if (threadIdx.x == 0) {
        if (traces != nullptr) traces[r] = diagonal;
        weighted[r] = dot;
    }
}

// gradMixAlpha[h] += sum over b, i of traces, gradMixBeta[h] += the same of weighted (either may be null), summed
// in (b, i) order: one thread per head.
extern "C" __global__ void attention_mix_gradient(float* gradMixAlpha, float* gradMixBeta, const float* traces, const float* weighted,
                                                  int batch, int heads, int queryTokens) {
    const int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= heads) return;
    float trace = 0.0f, sum = 0.0f;
    for (int b = 0; b < batch; b++) {
        const long long first = ((long long)b * heads + h) * queryTokens;
        for (int i = 0; i < queryTokens; i++) {
            trace += traces[first + i];
            sum += weighted[first + i];
        }
    }
    if (gradMixAlpha != nullptr) gradMixAlpha[h] += trace;
    if (gradMixBeta != nullptr) gradMixBeta[h] += sum;
}
