// Token + position embedding, its scatter-add gradient, and the index range check (Native/Backend.Embedding.cs).
// The gradient kernels give every table element its additions in row order, as the CPU backend does, so the
// results are bit-identical to it and repeat exactly; no float atomics.
#include "common.cuh"

// output[r, c] = tokenTable[tokens[r], c] + positionTable[r % tokensPerSequence, c] (positions optional).
extern "C" __global__ void embedding_forward(float* output, const int* tokens, const float* tokenTable, const float* positionTable,
                                             long long rows, int tokensPerSequence, int channels) {
    DSLM_FOR_EACH(index, rows * channels) {
        const long long r = index / channels;
        const int c = (int)(index % channels);
        float value = tokenTable[(long long)tokens[r] * channels + c];
        if (positionTable != nullptr) value += positionTable[(r % tokensPerSequence) * channels + c];
        output[index] = value;
    }
}

// gradTokenTable[tokens[r], c] += gradOutput[r, c] for every row r in order. Thread (c, slice) owns channel c of
// the vocabulary rows v with v % slices == slice (slices = gridDim.y): each table element has one owner, which
// walks the rows in order, so no two threads ever add to one element.
extern "C" __global__ void embedding_backward_tokens(float* gradTokenTable, const float* gradOutput, const int* tokens, long long rows, int channels) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    const int slices = gridDim.y, slice = blockIdx.y;
    for (long long r = 0; r < rows; r++) {
        const int token = tokens[r];
        if (token % slices == slice) gradTokenTable[(long long)token * channels + c] += gradOutput[r * channels + c];
    }
}

// gradPositionTable[t, c] += gradOutput[b, t, c] for b = 0, 1, ... in order; one thread per (t, c).
extern "C" __global__ void embedding_backward_positions(float* gradPositionTable, const float* gradOutput, int batch, int tokens, int channels) {
    DSLM_FOR_EACH(index, (long long)tokens * channels) {
        float sum = gradPositionTable[index];
        for (int b = 0; b < batch; b++) sum += gradOutput[(long long)b * tokens * channels + index];
        gradPositionTable[index] = sum;
    }
}

// firstPosition (set to all ones before the launch) becomes the smallest i with indices[i] outside [0, limit) and
// not the allowed value (when hasAllowed): a minimum, so the result does not depend on thread order.
extern "C" __global__ void find_invalid_index(unsigned long long* firstPosition, const int* indices, long long count, int limit,
                                              int allowed, int hasAllowed) {
    DSLM_FOR_EACH(i, count) {
        const int value = indices[i];
        if ((value < 0 || value >= limit) && !(hasAllowed && value == allowed)) atomicMin(firstPosition, (unsigned long long)i);
    }
}
