// Philox draws: inverted dropout with Philox4x32-10 masks bit-identical to the CPU backend's (Native/Philox.cs,
// Native/Backend.Dropout.cs): element i keeps its value when word i of stream (seed, offset) >= threshold, where
// threshold = ceil(p * 2^24) * 256 makes that test equal to uniform(word) >= p.
#include "common.cuh"

// destination[i] (= or +=) keep(i) ? source[i] / keep : 0. One thread per Philox block of four elements. The
// division (not a multiplication by 1/keep) gives the correctly rounded x / (1 - p), as on the CPU.
extern "C" __global__ void dropout_apply(float* destination, const float* source, long long count, unsigned long long seed,
                                         unsigned long long offset, unsigned int threshold, float keep, int accumulate) {
    const long long groups = (count + 3) / 4;
    DSLM_FOR_EACH(group, groups) {
        const PhiloxWords words = philox_block((unsigned long long)group, offset, seed);
        const unsigned int word[4] = { words.x0, words.x1, words.x2, words.x3 };
        #pragma unroll
        for (int lane = 0; lane < 4; lane++) {
            const long long i = group * 4 + lane;
            if (i >= count) break;
            const float value = word[lane] >= threshold ? source[i] / keep : 0.0f;
            destination[i] = accumulate ? destination[i] + value : value;
        }
    }
}

// output[i] = mean + std * n_i, n from Box-Muller in float64 on Philox words (0, 1) and (2, 3) of block i / 4, the
// layout of Philox.Normals (Native/Philox.cs): u = (word + 1/2) 2^-32, radius sqrt(-2 ln u0), angle 2 pi u1
// (sincospi keeps the angle exact). One thread per block of four elements.
__device__ __forceinline__ void box_muller(unsigned int radiusWord, unsigned int angleWord, double* c, double* s) {
    const double scale = 1.0 / 4294967296.0;
    const double radius = sqrt(-2.0 * log(((double)radiusWord + 0.5) * scale));
    double sine, cosine;
    sincospi(2.0 * (((double)angleWord + 0.5) * scale), &sine, &cosine);
    *c = radius * cosine;
    *s = radius * sine;
}

extern "C" __global__ void random_normal(float* output, long long count, unsigned long long seed, unsigned long long offset,
                                         float mean, float std) {
    const long long groups = (count + 3) / 4;
    DSLM_FOR_EACH(group, groups) {
        const PhiloxWords words = philox_block((unsigned long long)group, offset, seed);
        double n[4];
        box_muller(words.x0, words.x1, &n[0], &n[1]);
        box_muller(words.x2, words.x3, &n[2], &n[3]);
        #pragma unroll
        for (int lane = 0; lane < 4; lane++) {
            const long long i = group * 4 + lane;
            if (i >= count) break;
            output[i] = (float)((double)mean + (double)std * n[lane]);
        }
    }
}
