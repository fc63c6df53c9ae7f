// Inverted dropout with Philox4x32-10 masks bit-identical to the CPU backend's (Native/Philox.cs,
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
