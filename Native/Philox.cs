using System.Runtime.CompilerServices;

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
}
