namespace DeepScaleLM.Training.Data;

/// <summary>
/// Random training windows that depend only on (seed, step): batch row r of step s starts at a uniform offset in the
/// range, drawn from a SplitMix64 hash of (seed, step, r). No state is carried from step to step, so a run resumed at
/// step s sees exactly the windows an uninterrupted run would. Each window has tokens + 1 ids: the inputs and, shifted
/// by one, the targets.
/// </summary>
public sealed class BatchSampler
{
    private readonly TokenFileReader source;

    /// <summary>Samples [<paramref name="batch"/>, <paramref name="tokens"/> + 1] windows from <paramref name="range"/> of <paramref name="source"/>.</summary>
    /// <exception cref="ArgumentException">The range is outside the file or shorter than one window.</exception>
    public BatchSampler(TokenFileReader source, TokenRange range, int batch, int tokens, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokens, 1);
        if (range.Start < 0 || range.Count < 0 || range.Start + range.Count > source.Count)
            throw new ArgumentException($"range [{range.Start}, {range.Start + range.Count}) is outside the {source.Count} tokens of '{source.FilePath}'", nameof(range));
        if (range.Count < tokens + 1L)
            throw new ArgumentException($"{range.Count} tokens are fewer than one window of {tokens + 1} (context {tokens} + 1 target)", nameof(range));
        this.source = source;
        Range = range;
        Batch = batch;
        Tokens = tokens;
        Seed = seed;
    }

    /// <summary>The range windows are drawn from.</summary>
    public TokenRange Range { get; }

    /// <summary>Windows per batch.</summary>
    public int Batch { get; }

    /// <summary>Context length; each window holds Tokens + 1 ids.</summary>
    public int Tokens { get; }

    /// <summary>The seed.</summary>
    public ulong Seed { get; }

    /// <summary>Start offset (in the file) of batch row <paramref name="row"/> at <paramref name="step"/>.</summary>
    public long Offset(long step, int row)
    {
        ulong positions = (ulong)(Range.Count - Tokens); // valid starts: 0 .. Count - (Tokens + 1)
        ulong h = Mix(Mix(Mix(Seed) ^ (ulong)step) ^ (ulong)row);
        // Multiply-high maps the 64-bit hash onto [0, positions) with a bias below 2^-40 for any real corpus.
        ulong offset = (ulong)(((UInt128)h * positions) >> 64);
        return Range.Start + (long)offset;
    }

    /// <summary>Fills <paramref name="destination"/> (Batch * (Tokens + 1) ids, row-major) with the windows of <paramref name="step"/>.</summary>
    public void Sample(long step, Span<int> destination)
    {
        int width = Tokens + 1;
        if (destination.Length != Batch * width)
            throw new ArgumentException($"destination holds {destination.Length} ids, a batch needs {Batch} x {width} = {Batch * width}", nameof(destination));
        for (int row = 0; row < Batch; row++) source.Read(Offset(step, row), destination.Slice(row * width, width));
    }

    /// <summary>The windows of <paramref name="step"/> in a new array.</summary>
    public int[] Sample(long step)
    {
        var batch = new int[Batch * (Tokens + 1)];
        Sample(step, batch);
        return batch;
    }

    /// <summary>SplitMix64's finaliser: a bijective 64-bit mix (Steele et al. 2014), the hash of every data draw.</summary>
    internal static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
