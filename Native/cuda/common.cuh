// Shared device helpers of the DeepScaleLM kernels: deterministic reductions and the Philox generator.
// Every reduction here combines values in an order fixed by thread and block indices only (never by timing),
// so a kernel that uses them returns the same bits on every run. Included by every .cu file; the hash in each
// PTX header covers this file too (see scripts/build-ptx.sh).
#pragma once

#define DSLM_WARP 32
#define DSLM_FULL_MASK 0xffffffffu
// Threads per block for row kernels (one block per row) and element-wise kernels. The reductions below assume
// blockDim.x is a multiple of 32 and at most DSLM_MAX_THREADS.
#define DSLM_MAX_THREADS 1024

// Sum across a warp by a fixed butterfly: every lane ends with the same total, formed in the same order.
__device__ __forceinline__ float warp_sum(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(DSLM_FULL_MASK, value, offset);
    return value;
}

__device__ __forceinline__ double warp_sum(double value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(DSLM_FULL_MASK, value, offset);
    return value;
}

__device__ __forceinline__ float warp_max(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(DSLM_FULL_MASK, value, offset));
    return value;
}

// Sum over the block: warp butterflies, then every thread adds the warp totals in warp order. `scratch` holds
// at least blockDim.x / 32 values; it may be reused right after the call (the trailing barrier protects it).
template <typename T>
__device__ __forceinline__ T block_sum(T value, T* scratch) {
    const int lane = threadIdx.x % DSLM_WARP, warp = threadIdx.x / DSLM_WARP, warps = blockDim.x / DSLM_WARP;
    value = warp_sum(value);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < warps; w++) total += scratch[w];
    __syncthreads();
    return total;
}

// Maximum over the block (order does not matter for a maximum, but NaN is propagated: fmaxf drops NaN, so it
// is carried separately).
__device__ __forceinline__ float block_max(float value, float* scratch) {
    const int lane = threadIdx.x % DSLM_WARP, warp = threadIdx.x / DSLM_WARP, warps = blockDim.x / DSLM_WARP;
    value = warp_max(value);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    float total = -INFINITY;
    for (int w = 0; w < warps; w++) total = fmaxf(total, scratch[w]);
    __syncthreads();
    return total;
}

// Philox4x32-10 (Salmon et al., SC 2011), the layout of Native/Philox.cs: element i of stream (seed, offset)
// takes word i % 4 of the block with counter (lo32(i/4), hi32(i/4), lo32(offset), hi32(offset)) and key
// (lo32(seed), hi32(seed)).
struct PhiloxWords { unsigned int x0, x1, x2, x3; };

__device__ __forceinline__ PhiloxWords philox_block(unsigned long long block, unsigned long long offset, unsigned long long seed) {
    unsigned int c0 = (unsigned int)block, c1 = (unsigned int)(block >> 32);
    unsigned int c2 = (unsigned int)offset, c3 = (unsigned int)(offset >> 32);
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    #pragma unroll
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        const unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const unsigned int n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
    PhiloxWords words = { c0, c1, c2, c3 };
    return words;
}

// Grid-stride loop over [0, count) with 64-bit indices.
#define DSLM_FOR_EACH(index, count) \
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < (count); index += (long long)gridDim.x * blockDim.x)
