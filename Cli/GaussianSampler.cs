namespace DeepScaleLM.Cli;

/// <summary>
/// Standard normal draws for the CLI's host-side probe inputs (Box-Muller), filled in parallel: every fill is cut into
/// chunks of a fixed size, and chunk c of the f-th fill draws from its own <see cref="System.Random"/> seeded from
/// (seed, f, c), so the values depend on the seed and the order of fills, never on the thread count. (The full
/// <c>dslm validate</c> grids draw ~10^11 values; one thread of Box-Muller would take hours.)
/// </summary>
internal sealed class GaussianSampler(int seed)
{
    private const int Chunk = 1 << 16;
    private long _fills;

    /// <summary>A generator for the few uniform draws callers need besides the Gaussians (mask seeds).</summary>
    public Random Random { get; } = new(seed);

    /// <summary>Fills <paramref name="values"/> with independent N(0, std^2) draws.</summary>
    public void Fill(float[] values, double std = 1)
    {
        long fill = _fills++;
        int chunks = (values.Length + Chunk - 1) / Chunk;
        Parallel.For(0, chunks, c =>
        {
            var random = new Random(ChunkSeed(fill, c));
            int end = Math.Min(values.Length, (c + 1) * Chunk);
            for (int i = c * Chunk; i < end; i += 2)
            {
                double radius = std * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble()));
                var (sin, cos) = Math.SinCos(2 * Math.PI * random.NextDouble());
                values[i] = (float)(radius * cos);
                if (i + 1 < end) values[i + 1] = (float)(radius * sin);
            }
        });
    }

    /// <summary>SplitMix64's finalizer over (seed, fill, chunk): well-spread, distinct seeds for every chunk.</summary>
    private int ChunkSeed(long fill, int chunk)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)fill * 0xBF58476D1CE4E5B9UL + (ulong)chunk * 0x94D049BB133111EBUL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)((z ^ (z >> 31)) >> 33);
    }
}
