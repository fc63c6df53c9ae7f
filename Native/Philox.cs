using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DeepScaleLM.Native;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
/// generator, so any element's random number is computed from (seed, offset, index) alone and every backend
/// (C#, CUDA) draws the same stream without sharing state.
/// </summary>
/// <remarks>
/// Layout, fixed for all backends: element <c>i</c> of a stream takes word <c>i % 4</c> of the block with
/// counter <c>(lo32(i / 4), hi32(i / 4), lo32(offset), hi32(offset))</c> and key <c>(lo32(seed), hi32(seed))</c>.
/// A uniform float is <c>(word &gt;&gt; 8) * 2^-24</c> in [0, 1); dropout keeps an element when it is
/// &gt;= the drop probability. Different offsets are different counters, hence independent streams.
/// </remarks>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The four 32-bit words of block (counter, key) after 10 rounds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (uint X0, uint X1, uint X2, uint X3) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>The 32-bit random word of element <paramref name="index"/> of stream (seed, offset).</summary>
    public static uint Word(ulong seed, ulong offset, long index)
    {
        ulong blockIndex = (ulong)index >> 2;
        var (x0, x1, x2, x3) = Block((uint)blockIndex, (uint)(blockIndex >> 32), (uint)offset, (uint)(offset >> 32), (uint)seed, (uint)(seed >> 32));
        return (index & 3) switch { 0 => x0, 1 => x1, 2 => x2, _ => x3 };
    }

    /// <summary>
    /// The four standard normals of block <paramref name="block"/> (elements 4 block .. 4 block + 3) of stream (seed,
    /// offset), as <see cref="Backend.RandomNormal"/> draws them: Box-Muller in float64 on words (0, 1) and (2, 3).
    /// </summary>
    public static (double N0, double N1, double N2, double N3) Normals(ulong seed, ulong offset, ulong block)
    {
        var (x0, x1, x2, x3) = Block((uint)block, (uint)(block >> 32), (uint)offset, (uint)(offset >> 32), (uint)seed, (uint)(seed >> 32));
        var (n0, n1) = BoxMuller(x0, x1);
        var (n2, n3) = BoxMuller(x2, x3);
        return (n0, n1, n2, n3);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the standard normals of elements [0, length) of stream (seed, offset):
    /// on the host, the values <see cref="Backend.RandomNormal"/> draws on a device (before its rounding to float).
    /// </summary>
    public static void Normals(Span<double> destination, ulong seed, ulong offset)
    {
        for (int i = 0; i < destination.Length; i += 4)
        {
            var (n0, n1, n2, n3) = Normals(seed, offset, (ulong)i >> 2);
            ReadOnlySpan<double> block = [n0, n1, n2, n3];
            block[..Math.Min(4, destination.Length - i)].CopyTo(destination[i..]);
        }
    }

    /// <summary>Radius sqrt(-2 ln u) and angle 2 pi v from two words, u and v = (word + 1/2) 2^-32 in (0, 1).</summary>
    private static (double Cos, double Sin) BoxMuller(uint radiusWord, uint angleWord)
    {
        const double scale = 1.0 / 4294967296.0;
        double radius = Math.Sqrt(-2 * Math.Log((radiusWord + 0.5) * scale));
        var (sin, cos) = Math.SinCos(2 * Math.PI * ((angleWord + 0.5) * scale));
        return (radius * cos, radius * sin);
    }

    /// <summary>Uniform in [0, 1) with 24 random bits, from a word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToUniform(uint word) => (word >> 8) * (1f / 16777216f);

    /// <summary>Fills <paramref name="destination"/> with the uniforms of elements [start, start + length) of stream (seed, offset).</summary>
    public static void Uniforms(Span<float> destination, ulong seed, ulong offset, long start)
    {
        long i = start, end = start + destination.Length;
        int o = 0;
        while (i < end)
        {
            ulong blockIndex = (ulong)i >> 2;
            var (x0, x1, x2, x3) = Block((uint)blockIndex, (uint)(blockIndex >> 32), (uint)offset, (uint)(offset >> 32), (uint)seed, (uint)(seed >> 32));
            for (int w = (int)(i & 3); w < 4 && i < end; w++, i++, o++)
                destination[o] = ToUniform(w switch { 0 => x0, 1 => x1, 2 => x2, _ => x3 });
        }
    }

    /// <summary>
    /// The words of the 32 elements [4 * firstBlock, 4 * firstBlock + 32) of stream (seed, offset), in element
    /// order: the same values as <see cref="Word"/>, eight blocks at a time.
    /// </summary>
    /// <remarks>
    /// With AVX-512 each 64-bit lane runs one block: VPMULUDQ multiplies the low 32 bits of each lane into the full
    /// 64-bit product, so the high half holds mulhi and the low half mullo. Only low halves are ever read (by the
    /// multiplies and the final gather), so the garbage XOR leaves in the high halves is never masked off. Without
    /// AVX-512 the blocks run one by one through <see cref="Block"/>.
    /// </remarks>
    internal static (Vector512<uint> First, Vector512<uint> Second) Words32(ulong seed, ulong offset, ulong firstBlock)
    {
        if (!Avx512F.IsSupported) return Words32Scalar(seed, offset, firstBlock);

        var block = Vector512.Create(firstBlock) + Vector512.Create(0ul, 1, 2, 3, 4, 5, 6, 7);
        Vector512<ulong> c0 = block, c1 = Vector512.ShiftRightLogical(block, 32);
        Vector512<ulong> c2 = Vector512.Create((ulong)(uint)offset), c3 = Vector512.Create(offset >> 32);
        var m0 = Vector512.Create((ulong)M0).AsUInt32();
        var m1 = Vector512.Create((ulong)M1).AsUInt32();
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            var p0 = Avx512F.Multiply(c0.AsUInt32(), m0);
            var p1 = Avx512F.Multiply(c2.AsUInt32(), m1);
            c0 = Vector512.ShiftRightLogical(p1, 32) ^ c1 ^ Vector512.Create((ulong)k0);
            c1 = p1;
            c2 = Vector512.ShiftRightLogical(p0, 32) ^ c3 ^ Vector512.Create((ulong)k1);
            c3 = p0;
        }
        // Low halves of (c0, c1) interleaved: [b0w0, b0w1, b1w0, b1w1, ...]; likewise (c2, c3) for words 2 and 3.
        var pairs = Vector512.Create(0u, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        var words01 = Avx512F.PermuteVar16x32x2(c0.AsUInt32(), pairs, c1.AsUInt32()).AsUInt64();
        var words23 = Avx512F.PermuteVar16x32x2(c2.AsUInt32(), pairs, c3.AsUInt32()).AsUInt64();
        // Then alternate the pairs: block b's words 0..3 become elements 4b..4b+3.
        var first = Avx512F.PermuteVar8x64x2(words01, Vector512.Create(0ul, 8, 1, 9, 2, 10, 3, 11), words23);
        var second = Avx512F.PermuteVar8x64x2(words01, Vector512.Create(4ul, 12, 5, 13, 6, 14, 7, 15), words23);
        return (first.AsUInt32(), second.AsUInt32());
    }

    private static (Vector512<uint> First, Vector512<uint> Second) Words32Scalar(ulong seed, ulong offset, ulong firstBlock)
    {
        Span<uint> words = stackalloc uint[32];
        Words(words, seed, offset, firstBlock);
        return (Vector512.Create<uint>(words), Vector512.Create<uint>(words[16..]));
    }

    /// <summary>Fills <paramref name="destination"/> (a multiple of 4 long) with the words of consecutive blocks from <paramref name="firstBlock"/>, one block at a time.</summary>
    internal static void Words(Span<uint> destination, ulong seed, ulong offset, ulong firstBlock)
    {
        for (int b = 0; b < destination.Length / 4; b++)
        {
            ulong blockIndex = firstBlock + (ulong)b;
            (destination[4 * b], destination[4 * b + 1], destination[4 * b + 2], destination[4 * b + 3]) =
                Block((uint)blockIndex, (uint)(blockIndex >> 32), (uint)offset, (uint)(offset >> 32), (uint)seed, (uint)(seed >> 32));
        }
    }

    /// <summary>
    /// The keep threshold of dropout on raw words: <c>ToUniform(word) &gt;= probability</c> exactly when
    /// <c>word &gt;= KeepThreshold(probability)</c>. ToUniform is the integer word &gt;&gt; 8 times 2^-24 and
    /// probability * 2^24 is exact in float, so the test is (word &gt;&gt; 8) &gt;= ceil(probability * 2^24), i.e.
    /// word &gt;= ceil(probability * 2^24) * 256; for probability in [0, 1) that is at most 2^32 - 256.
    /// </summary>
    internal static uint KeepThreshold(float probability) => (uint)MathF.Ceiling(probability * 16777216f) << 8;
}
