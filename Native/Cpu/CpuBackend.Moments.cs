using System.Buffers;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>Channels per work item of the moments' second pass: its float64 sums (4 KiB) stay in L1.</summary>
    private const int MomentsChannelBlock = 512;

    /// <inheritdoc/>
    /// <remarks>
    /// Two passes in float64. Pass 1 takes each token's mean m_t over its S = batch x channels samples. Pass 2
    /// centres every element on its token's mean, c_t(s) = x_t(s) - m_t, and for each sample s accumulates
    /// X_s = sum_t c_t(s), giving Q = sum_s X_s^2 and D = sum_s sum_t c_t(s)^2. Since
    /// sum_{i != j} c_i c_j = X^2 - sum_i c_i^2, the mean off-diagonal covariance over the mean diagonal one is
    /// ((Q - D) / (T (T - 1))) / (D / T) = (Q - D) / ((T - 1) D), in O(B T d) instead of O(T^2 B d). The variance of
    /// all elements follows from the same pass: sum (x - mean)^2 = D + S sum_t (m_t - mean)^2. Work items are
    /// tokens (pass 1) and (batch row, channel block) pairs (pass 2), each writing its own partials, which are
    /// then added in item order, so the result is the same for any thread count.
    /// </remarks>
    protected override unsafe MomentStatistics MomentsCore(Tensor activations)
    {
        int batch = activations.Shape[0], tokens = activations.Shape[1], channels = activations.Shape[2];
        int blocks = (channels + MomentsChannelBlock - 1) / MomentsChannelBlock, items = batch * blocks;
        double[] buffer = ArrayPool<double>.Shared.Rent(tokens + 2 * items);
        try
        {
            fixed (double* workspace = buffer)
            {
                double* means = workspace, partials = workspace + tokens;
                var meansJob = new TokenMeansJob(Floats(activations), means, batch, tokens, channels);
                _pool.For(tokens, ref meansJob);
                var centredJob = new CentredSumsJob(Floats(activations), means, partials, tokens, channels, blocks);
                _pool.For(items, ref centredJob);

                double samples = (double)batch * channels, count = samples * tokens;
                double mean = 0;
                for (int t = 0; t < tokens; t++) mean += means[t];
                mean /= tokens;
                double q = 0, d = 0, spread = 0;
                for (int i = 0; i < items; i++)
                {
                    q += partials[2 * i];
                    d += partials[2 * i + 1];
                }
                for (int t = 0; t < tokens; t++) spread += (means[t] - mean) * (means[t] - mean);
                // With one token, or tokens constant over their samples, the ratio is 0/0: report no correlation.
                double correlation = tokens > 1 && d > 0 ? (q - d) / ((tokens - 1) * d) : 0;
                return new MomentStatistics(mean, (d + samples * spread) / count, correlation);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    /// <summary>The 16 lanes' float32 values widened to float64 and summed.</summary>
    private static Vector512<double> WidenedSum(Vector512<float> x)
    {
        var (lo, hi) = Vector512.Widen(x);
        return lo + hi;
    }

    /// <summary>means[t] = mean over batch and channels of x[:, t, :], summed in float64.</summary>
    private readonly unsafe struct TokenMeansJob(float* x, double* means, int batch, int tokens, int channels) : IParallelJob
    {
        public void Execute(int t)
        {
            var sum = Vector512<double>.Zero;
            for (int b = 0; b < batch; b++)
            {
                float* row = x + ((long)b * tokens + t) * channels;
                int c = 0;
                for (; c <= channels - ElementWise.Lanes; c += ElementWise.Lanes) sum += WidenedSum(Vector512.Load(row + c));
                if (c < channels) sum += WidenedSum(ElementWise.LoadTail(row + c, channels - c));
            }
            means[t] = Vector512.Sum(sum) / ((double)batch * channels);
        }
    }

    /// <summary>
    /// For item (b, channel block): partials[2 item] = sum over the block's channels of (sum_t c_t)^2 and
    /// partials[2 item + 1] = sum over channels and tokens of c_t^2, c_t = x[b, t, c] - means[t]. Rows are read
    /// contiguously, the per-channel sums kept in a stack block that stays in L1.
    /// </summary>
    private readonly unsafe struct CentredSumsJob(float* x, double* means, double* partials, int tokens, int channels, int blocks) : IParallelJob
    {
        public void Execute(int item)
        {
            int b = item / blocks, start = item % blocks * MomentsChannelBlock, width = Math.Min(MomentsChannelBlock, channels - start);
            int full = width - width % ElementWise.Lanes;
            double* sums = stackalloc double[MomentsChannelBlock];
            new Span<double>(sums, MomentsChannelBlock).Clear();
            // Zero-padded lanes of the last, partial vector must stay 0 after centring.
            var (liveLo, liveHi) = Vector512.Widen(Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(width - full)));
            Vector512<double> squaresLo = Vector512<double>.Zero, squaresHi = Vector512<double>.Zero;
            for (int t = 0; t < tokens; t++)
            {
                float* row = x + ((long)b * tokens + t) * channels + start;
                var m = Vector512.Create(means[t]);
                for (int c = 0; c < width; c += ElementWise.Lanes)
                {
                    var (lo, hi) = Vector512.Widen(c < full ? Vector512.Load(row + c) : ElementWise.LoadTail(row + c, width - c));
                    lo -= m;
                    hi -= m;
                    if (c >= full)
                    {
                        lo &= liveLo.AsDouble();
                        hi &= liveHi.AsDouble();
                    }
                    (Vector512.Load(sums + c) + lo).Store(sums + c);
                    (Vector512.Load(sums + c + 8) + hi).Store(sums + c + 8);
                    squaresLo = Vector512.FusedMultiplyAdd(lo, lo, squaresLo);
                    squaresHi = Vector512.FusedMultiplyAdd(hi, hi, squaresHi);
                }
            }
            var across = Vector512<double>.Zero;
            for (int c = 0; c < width; c += 8)
            {
                var v = Vector512.Load(sums + c);
                across = Vector512.FusedMultiplyAdd(v, v, across);
            }
            partials[2 * item] = Vector512.Sum(across);
            partials[2 * item + 1] = Vector512.Sum(squaresLo + squaresHi);
        }
    }
}
