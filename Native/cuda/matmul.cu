// What cuBLAS does not do for the matrix product (Native/Backend.MatMul.cs): the bias add and the bias gradient,
// plus the deterministic column sums that the layer-norm backward reuses for its weight and bias gradients.
#include "common.cuh"

// output[r, c] += bias[c] over a [rows, columns] matrix.
extern "C" __global__ void bias_add(float* output, const float* bias, long long rows, int columns) {
    DSLM_FOR_EACH(i, rows * columns) output[i] += bias[i % columns];
}

// partials[chunk, c] = sum of matrix[r, c] over the rows r of chunk blockIdx.y (gridDim.y chunks of equal share),
// summed in row order. Thread x of block x covers column blockIdx.x * blockDim.x + threadIdx.x.
extern "C" __global__ void column_partial_sums(float* partials, const float* matrix, long long rows, int columns) {
    const int column = blockIdx.x * blockDim.x + threadIdx.x;
    if (column >= columns) return;
    const long long chunks = gridDim.y, start = blockIdx.y * rows / chunks, end = (blockIdx.y + 1) * rows / chunks;
    float sum = 0.0f;
    for (long long r = start; r < end; r++) sum += matrix[r * columns + column];
    partials[(long long)blockIdx.y * columns + column] = sum;
}

// For each column c of partials [chunks, columns]: total = sum over chunks in chunk order; then first[c] += total
// for c < split, second[c - split] += total for the rest (a null destination is skipped).
extern "C" __global__ void column_sums_accumulate(float* first, float* second, int split, const float* partials, int chunks, int columns) {
    const int column = blockIdx.x * blockDim.x + threadIdx.x;
    if (column >= columns) return;
    float total = 0.0f;
    for (int chunk = 0; chunk < chunks; chunk++) total += partials[(long long)chunk * columns + column];
    if (column < split) { if (first != nullptr) first[column] += total; }
    else if (second != nullptr) second[column - split] += total;
}
