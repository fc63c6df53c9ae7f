namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// SUO, dks's scaled uniform orthogonal init (spa-theory.md 4): a Haar-random orthogonal matrix times
/// max(sqrt(fan_out / fan_in), 1), "so that the layer preserves q values at initialization-time".
/// </summary>
public static class ScaledUniformOrthogonal
{
    /// <summary>
    /// max(sqrt(fan_out / fan_in), 1), named by fan-in and fan-out so it cannot fall into the PyTorch port's layout trap
    /// (which reads dim 0 of an nn.Linear [out, in] weight as the input; spa-theory.md 4): an expanding 256 -&gt; 1024
    /// layer gets 2, a contracting 1024 -&gt; 256 layer 1.
    /// </summary>
    /// <param name="fanIn">The number of inputs of the layer.</param>
    /// <param name="fanOut">The number of outputs of the layer.</param>
    public static double Scale(int fanIn, int fanOut) => Math.Max(Math.Sqrt((double)fanOut / fanIn), 1);
}
