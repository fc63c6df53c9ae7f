namespace DeepScaleLM.Tests.Support;

/// <summary>One attention problem in float64: shapes, options and inputs as plain arrays.</summary>
internal sealed record AttentionCase(int Batch, int QueryTokens, int KeyTokens, int Heads, int HeadDim, bool Causal)
{
    public int Channels => Heads * HeadDim;
    public double Scale { get; init; } = double.NaN;
    public double EffectiveScale => double.IsNaN(Scale) ? 1.0 / Math.Sqrt(HeadDim) : Scale;
    public double[]? Bias { get; init; }
    public double[]? Rescale { get; init; }
    public double[]? MixAlpha { get; init; }
    public double[]? MixBeta { get; init; }

    public override string ToString() =>
        $"batch {Batch}, Tq {QueryTokens}, Tk {KeyTokens}, heads {Heads}, headDim {HeadDim}, causal {Causal}, bias {Bias is not null}, rescale {Rescale is not null}, mix {MixAlpha is not null}";
}

/// <summary>
/// Attention written directly from its definition with float64 loops (no GEMM, no SIMD, nothing shared with the
/// code under test): <c>S = scale Q K^T + bias</c>, causal mask, max-subtracted softmax with an all -inf row giving
/// 0, <c>M = alpha I + beta P</c>, <c>out[i] = rescale[i] (M V)[i]</c>.
/// </summary>
internal static class AttentionReference
{
    /// <summary>The output [batch, Tq, channels]; <paramref name="probabilities"/> receives P [batch, heads, Tq, Tk] when given.</summary>
    public static double[] Forward(AttentionCase c, double[] query, double[] key, double[] value,
        double[]? mixAlpha = null, double[]? mixBeta = null, double[]? probabilities = null)
    {
        mixAlpha ??= c.MixAlpha;
        mixBeta ??= c.MixBeta;
        int tq = c.QueryTokens, tk = c.KeyTokens, ch = c.Channels, d = c.HeadDim;
        var output = new double[c.Batch * tq * ch];
        var scores = new double[tk];
        for (int b = 0; b < c.Batch; b++)
            for (int h = 0; h < c.Heads; h++)
                for (int i = 0; i < tq; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < tk; j++)
                    {
                        double s = double.NegativeInfinity;
                        if (!(c.Causal && j > i))
                        {
                            s = 0;
                            for (int e = 0; e < d; e++) s += query[(b * tq + i) * ch + h * d + e] * key[(b * tk + j) * ch + h * d + e];
                            s = s * c.EffectiveScale + (c.Bias?[i * tk + j] ?? 0);
                        }
                        scores[j] = s;
                        max = Math.Max(max, s);
                    }
                    double sum = 0;
                    for (int j = 0; j < tk; j++)
                    {
                        scores[j] = double.IsNegativeInfinity(max) ? 0 : Math.Exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int j = 0; j < tk; j++)
                    {
                        double p = sum == 0 ? 0 : scores[j] / sum;
                        if (probabilities is not null) probabilities[((b * c.Heads + h) * tq + i) * tk + j] = p;
                        double m = (mixBeta?[h] ?? 1) * p + (mixAlpha is not null && i == j ? mixAlpha[h] : 0);
                        for (int e = 0; e < d; e++) output[(b * tq + i) * ch + h * d + e] += m * value[(b * tk + j) * ch + h * d + e];
                    }
                    for (int e = 0; e < d; e++) output[(b * tq + i) * ch + h * d + e] *= c.Rescale?[i] ?? 1;
                }
        return output;
    }
}
