// Rounding to the 16-bit compute formats and back (Native/Backend.Precision.cs), on the float32 bit patterns with the
// same integer steps as the CPU backend (Native/Cpu/CpuBackend.Precision.cs), so both give identical bits, NaN
// payloads included.
#include "common.cuh"

#define QUIET_BIT 0x00400000u

__device__ __forceinline__ bool is_nan_bits(unsigned int bits) { return (bits & 0x7FFFFFFFu) > 0x7F800000u; }

// bfloat16: round to nearest even by adding 0x7FFF plus the lowest kept bit and truncating; a carry past the largest
// finite value lands exactly on infinity. A NaN is truncated and forced quiet.
__device__ __forceinline__ unsigned int round_bfloat16(unsigned int bits) {
    if (is_nan_bits(bits)) return (bits & 0xFFFF0000u) | QUIET_BIT;
    return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
}

// binary16: normal range keeps 10 mantissa bits with the same add-and-truncate rounding, overflowing to infinity from
// 2^16 up; below 2^-14, (|x| + 0.5) - 0.5 rounds |x| to binary16's subnormal grid 2^-24 (float32's spacing in [0.5, 1)).
__device__ __forceinline__ unsigned int round_half(unsigned int bits) {
    if (is_nan_bits(bits)) return (bits & 0xFFFFE000u) | QUIET_BIT;
    const unsigned int sign = bits & 0x80000000u, magnitude = bits & 0x7FFFFFFFu;
    if (magnitude < 0x38800000u) {
        // __fadd_rn keeps the compiler from folding the two additions away.
        const float x = __uint_as_float(magnitude);
        return sign | __float_as_uint(__fadd_rn(__fadd_rn(x, 0.5f), -0.5f));
    }
    unsigned int normal = (magnitude + 0xFFFu + ((magnitude >> 13) & 1u)) & 0xFFFFE000u;
    if (normal >= 0x47800000u) normal = 0x7F800000u;
    return sign | normal;
}

// output = round(input) for precision 1 (bf16) or 2 (fp16), ComputePrecision's values; output may be input.
extern "C" __global__ void round_to_precision(float* output, const float* input, long long count, int precision) {
    const unsigned int* x = reinterpret_cast<const unsigned int*>(input);
    unsigned int* y = reinterpret_cast<unsigned int*>(output);
    DSLM_FOR_EACH(i, count) {
        y[i] = precision == 1 ? round_bfloat16(x[i]) : round_half(x[i]);
    }
}
