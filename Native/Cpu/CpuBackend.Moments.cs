using System.Buffers;
using System.Runtime.CompilerServices;

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
                ElementWise.ForEach(_pool, tokens, new TokenMeansJob(Floats(activations), means, batch, tokens, channels));
                ElementWise.ForEach(_pool, items, new CentredSumsJob(Floats(activations), means, partials, tokens, channels, blocks));

                return MomentStatistics.FromCentredSums(new ReadOnlySpan<double>(means, tokens), new ReadOnlySpan<double>(partials, 2 * items), batch, channels);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    /// <summary>means[t] = mean over batch and channels of x[:, t, :], summed in float64.</summary>
    private readonly unsafe struct TokenMeansJob(float* x, double* means, int batch, int tokens, int channels) : IVectorJob
    {
        public void Execute<TWidth, TFloat, TDouble>(int t) where TWidth : IWidth<TFloat, TDouble>
        {
            var sum = TWidth.Broadcast(0.0);
            for (int b = 0; b < batch; b++)
            {
                float* row = x + ((long)b * tokens + t) * channels;
                int c = 0;
                for (; c <= channels - TWidth.Lanes; c += TWidth.Lanes) sum = Add(sum, row + c, TWidth.Lanes);
                if (c < channels) sum = Add(sum, row + c, channels - c);
            }
            means[t] = TWidth.Sum(sum) / ((double)batch * channels);

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            static TDouble Add(TDouble sum, float* p, int n)
            {
                var (lo, hi) = TWidth.Widen(ElementWise.Load<TWidth, TFloat, TDouble>(p, n));
                return TWidth.Add(sum, TWidth.Add(lo, hi));
            }
        }
    }

    /// <summary>
    /// For item (b, channel block): partials[2 item] = sum over the block's channels of (sum_t c_t)^2 and
    /// partials[2 item + 1] = sum over channels and tokens of c_t^2, c_t = x[b, t, c] - means[t]. Rows are read
    /// contiguously, the per-channel sums kept in a stack block that stays in L1.
    /// </summary>
    private readonly unsafe struct CentredSumsJob(float* x, double* means, double* partials, int tokens, int channels, int blocks) : IVectorJob
    {
        public void Execute<TWidth, TFloat, TDouble>(int item) where TWidth : IWidth<TFloat, TDouble>
        {
            int b = item / blocks, start = item % blocks * MomentsChannelBlock, width = Math.Min(MomentsChannelBlock, channels - start);
            int half = TWidth.Lanes / 2;
            double* sums = stackalloc double[MomentsChannelBlock];
            new Span<double>(sums, MomentsChannelBlock).Clear();
            var (liveLo, liveHi) = TWidth.FirstLanesWide(width % TWidth.Lanes);
            TDouble squaresLo = TWidth.Broadcast(0.0), squaresHi = squaresLo;
            for (int t = 0; t < tokens; t++)
            {
                float* row = x + ((long)b * tokens + t) * channels + start;
                var m = TWidth.Broadcast(means[t]);
                int c = 0;
                for (; c <= width - TWidth.Lanes; c += TWidth.Lanes)
                {
                    var (lo, hi) = TWidth.Widen(TWidth.Load(row + c));
                    Accumulate(TWidth.Subtract(lo, m), TWidth.Subtract(hi, m), c);
                }
                if (c < width)
                {
                    // Zero-padded lanes must stay 0 after centring.
                    var (lo, hi) = TWidth.Widen(TWidth.LoadTail(row + c, width - c));
                    Accumulate(TWidth.And(TWidth.Subtract(lo, m), liveLo), TWidth.And(TWidth.Subtract(hi, m), liveHi), c);
                }
            }
            var across = TWidth.Broadcast(0.0);
            for (int c = 0; c < width; c += half)
            {
                var v = TWidth.Load(sums + c);
                across = TWidth.Fma(v, v, across);
            }
            partials[2 * item] = TWidth.Sum(across);
            partials[2 * item + 1] = TWidth.Sum(TWidth.Add(squaresLo, squaresHi));

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            void Accumulate(TDouble lo, TDouble hi, int c)
            {
                TWidth.Store(TWidth.Add(TWidth.Load(sums + c), lo), sums + c);
                TWidth.Store(TWidth.Add(TWidth.Load(sums + c + half), hi), sums + c + half);
                squaresLo = TWidth.Fma(lo, lo, squaresLo);
                squaresHi = TWidth.Fma(hi, hi, squaresHi);
            }
        }
    }
}
