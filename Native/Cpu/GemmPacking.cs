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
/// </remarks>
internal static unsafe class GemmPacking
{
    /// <summary>Address of element [row, col] of op(X) for a row-major X with leading dimension <paramref name="ld"/>.</summary>
    public static float* At(bool transpose, float* x, int ld, int row, int col) =>
        transpose ? x + (long)col * ld + row : x + (long)row * ld + col;

    /// <summary>
    /// Packs the rows x depth block of op(X) starting at <paramref name="x"/> into ceil(rows / lanes) panels of
    /// depth steps of <paramref name="lanes"/> values: panel i, step p, lane r holds op(X)[i * lanes + r, p].
    /// </summary>
    public static void Pack(bool transpose, float* x, int ld, int rows, int depth, int lanes, float* packed)
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
}
