using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// Copies blocks of op(A) and op(B) into the panel layout a <see cref="IGemmKernel"/> streams through, so one
/// kernel serves every transpose combination and every leading dimension. Panels past the matrix edge are
/// zero-padded: the kernel always computes full tiles and the driver writes back only the valid part.
/// </summary>
/// <remarks>
/// A block of op(A) is packed as rows x depth with MR lanes per panel. A block of op(B) is the same operation on
/// op(B) transposed (NR lanes per panel, depth along k), so <c>PackB(transB) = Pack(!transB)</c> and one routine
/// serves both.
/// The packing loops, like the microkernels, are compiled fully optimized from the first call
/// (AggressiveOptimization): a GEMM makes only a few calls per product, too few for tiering to promote them
/// before a short run is over, and unoptimized vector code is an order of magnitude slower.
/// </remarks>
internal static unsafe class GemmPacking
{
    /// <summary>Address of element [row, col] of op(X) for a row-major X with leading dimension <paramref name="ld"/>.</summary>
    public static float* At(bool transpose, float* x, int ld, int row, int col) =>
        transpose ? x + (long)col * ld + row : x + (long)row * ld + col;

    /// <summary>
    /// Packs the rows x depth block of op(X) starting at <paramref name="x"/> into ceil(rows / lanes) panels of
    /// depth steps of <paramref name="lanes"/> values: panel i, step p, lane r holds op(X)[i * lanes + r, p].
    /// With <paramref name="avx512"/>, rows that run along the depth are transposed in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(bool transpose, float* x, int ld, int rows, int depth, int lanes, float* packed, bool avx512)
    {
        for (int i0 = 0; i0 < rows; i0 += lanes, packed += (long)depth * lanes)
        {
            int valid = Math.Min(lanes, rows - i0);
            if (transpose)
            {
                // op(X)[i, p] = x[p * ld + i]: each step's lanes are contiguous in memory.
                for (int p = 0; p < depth; p++)
                {
                    var dst = new Span<float>(packed + (long)p * lanes, lanes);
                    new ReadOnlySpan<float>(x + (long)p * ld + i0, valid).CopyTo(dst);
                    dst[valid..].Clear();
                }
            }
            else if (avx512)
                PackRowsTransposing(x + (long)i0 * ld, ld, valid, depth, lanes, packed);
            else
            {
                // op(X)[i, p] = x[i * ld + p]: read each row along the depth, scatter with stride lanes.
                for (int r = 0; r < valid; r++)
                {
                    float* src = x + (long)(i0 + r) * ld;
                    float* dst = packed + r;
                    for (int p = 0; p < depth; p++) dst[(long)p * lanes] = src[p];
                }
                for (int r = valid; r < lanes; r++)
                    for (int p = 0; p < depth; p++) packed[(long)p * lanes + r] = 0f;
            }
        }
    }

    /// <summary>
    /// One panel from <paramref name="valid"/> rows that run along the depth (row r at <c>x + r * ld</c>): 16 x 16
    /// blocks are loaded a row per register, transposed in registers and stored a step per register. A scalar
    /// scatter costs about a cycle per element, which dominated thin products (k or n of 64) where each packed
    /// value feeds only a few tiles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowsTransposing(float* x, int ld, int valid, int depth, int lanes, float* packed)
    {
        var block = new Block16();
        for (int g = 0; g < lanes; g += 16)
        {
            int rows = Math.Clamp(valid - g, 0, 16);
            var storeMask = FirstLanes(Math.Min(16, lanes - g));
            bool fullStore = lanes - g >= 16;
            for (int p = 0; p < depth; p += 16)
            {
                int steps = Math.Min(16, depth - p);
                var loadMask = FirstLanes(steps);
                for (int r = 0; r < 16; r++)
                {
                    float* src = x + (long)(g + r) * ld + p;
                    // Rows past the matrix are the panel's zero padding; a short step block must not read past the row.
                    block[r] = r >= rows ? default : steps == 16 ? Vector512.Load(src) : Avx512F.MaskLoad(src, loadMask, default);
                }
                block.Transpose();
                for (int t = 0; t < steps; t++)
                {
                    float* dst = packed + (long)(p + t) * lanes + g;
                    if (fullStore) block[t].Store(dst);
                    else Avx512F.MaskStore(dst, storeMask, block[t]);
                }
            }
        }
    }

    /// <summary>A mask (sign bits) selecting the first <paramref name="count"/> of 16 lanes.</summary>
    private static Vector512<float> FirstLanes(int count) =>
        Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    /// <summary>16 rows of 16 floats.</summary>
    [InlineArray(16)]
    private struct Block16
    {
        private Vector512<float> _row;

        /// <summary>
        /// Transposes in place by swapping off-diagonal sub-blocks of 8, 4, 2 and 1: at width w, rows i and i + w
        /// (i without bit w) exchange the second half of every 2w-wide chunk of row i with the first half of row
        /// i + w's, one two-source permute per output row.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Transpose()
        {
            for (int w = 8; w >= 1; w >>= 1)
            {
                var (low, high) = SwapIndices(w);
                for (int i = 0; i < 16; i++)
                {
                    if ((i & w) != 0) continue;
                    var upper = this[i];
                    var lower = this[i + w];
                    this[i] = Avx512F.PermuteVar16x32x2(upper, low, lower);
                    this[i + w] = Avx512F.PermuteVar16x32x2(upper, high, lower);
                }
            }
        }

        /// <summary>Permute indices for width w: 0..15 pick from the upper row, 16..31 from the lower.</summary>
        private static (Vector512<int> Low, Vector512<int> High) SwapIndices(int w)
        {
            var lane = Vector512<int>.Indices;
            var inChunk = lane & Vector512.Create(2 * w - 1);
            var chunk = lane - inChunk;
            var firstHalf = Vector512.LessThan(inChunk, Vector512.Create(w));
            // Row i keeps the first half of each chunk of its own and takes the first half of row i + w's.
            var low = Vector512.ConditionalSelect(firstHalf, lane, chunk + inChunk - Vector512.Create(w) + Vector512.Create(16));
            // Row i + w takes the second half of row i's chunk, then keeps the second half of its own.
            var high = Vector512.ConditionalSelect(firstHalf, lane + Vector512.Create(w), lane + Vector512.Create(16));
            return (low, high);
        }
    }
}
