namespace DeepScaleLM.Cli;

/// <summary>
/// Standard normal draws from a seeded <see cref="Random"/> (Box-Muller, both values of each pair used), for the
/// CLI's host-side inits and probe inputs. Deterministic for a given generator state.
/// </summary>
internal sealed class GaussianSampler(Random random)
{
    private double? _spare;

    /// <summary>The generator the draws come from (shared with callers that also need uniforms).</summary>
    public Random Random => random;

    /// <summary>One N(0, 1) draw.</summary>
    public double Next()
    {
        if (_spare is double kept)
        {
            _spare = null;
            return kept;
        }
        double radius = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble()));
        var (sin, cos) = Math.SinCos(2 * Math.PI * random.NextDouble());
        _spare = radius * sin;
        return radius * cos;
    }
}
