using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>Mean, variance and cross-token correlation of activations, as the DSLM simulations measure them.</summary>
public sealed class MomentsTests
{
    [Fact]
    public void MatchesTheFullCovarianceMatrix()
    {
        using var backend = new CpuBackend();
        Gen.Select(Gen.Int[1, 5], Gen.Int[1, 13], Gen.OneOf(Gen.Int[1, 41], Gen.Int[500, 1100]), Gen.OneOf(Gen.Const(0.0), Gen.Const(100.0)), Gen.Int[0, 1 << 20])
            .Sample((batch, tokens, channels, shift, seed) =>
            {
                // A shared component makes tokens correlate; the shift tests the centring. Over 512 channels a row
                // spans several work items.
                var common = TestData.Normal(seed + 1, batch * channels);
                var x = TestData.RoundToSingle(TestData.Normal(seed, batch * tokens * channels)
                    .Select((e, i) => shift + e + common[i / (tokens * channels) * channels + i % channels]).ToArray());
                using var tensor = TestData.Tensor(backend, x, batch, tokens, channels);
                var expected = Reference(x, batch, tokens, channels);
                var actual = backend.Moments(tensor);
                // Both sides are float64 sums of the same exact values in different orders: ~1e-13 relative.
                Assert.Equal(expected.Mean, actual.Mean, 1e-12 * (1 + Math.Abs(expected.Mean)));
                Assert.Equal(expected.Variance, actual.Variance, 1e-10 * expected.Variance);
                Assert.Equal(expected.Correlation, actual.Correlation, 1e-10);
            }, iter: 80, threads: 1);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.8)]
    public void RecoversAConstructedCorrelation(double r)
    {
        // x_t = sqrt(r) z + sqrt(1 - r) e_t with z, e_t independent N(0, 1): correlation r between any two tokens.
        // With S = 8 x 256 samples the estimate's standard deviation is about r (1 - r) sqrt(2 / S) <= 0.008; 0.04 is 5 sigma.
        int batch = 8, tokens = 16, channels = 256;
        var z = TestData.Normal(1, batch * channels);
        var e = TestData.Normal(2, batch * tokens * channels);
        var x = e.Select((v, i) => Math.Sqrt(r) * z[i / (tokens * channels) * channels + i % channels] + Math.Sqrt(1 - r) * v).ToArray();
        using var backend = new CpuBackend();
        using var tensor = TestData.Tensor(backend, x, batch, tokens, channels);
        var moments = backend.Moments(tensor);
        Assert.Equal(r, moments.Correlation, 0.04);
        Assert.Equal(0, moments.Mean, 0.05);
        Assert.Equal(1, moments.Variance, 0.05);
    }

    [Fact]
    public void SingleTokenAndConstantTokensHaveNoCorrelation()
    {
        using var backend = new CpuBackend();
        using var single = TestData.Tensor(backend, TestData.Normal(1, 3 * 17), 3, 1, 17);
        Assert.Equal(0, backend.Moments(single).Correlation);
        using var constant = TestData.Tensor(backend, Enumerable.Repeat(2.5, 4 * 5 * 6).ToArray(), 4, 5, 6);
        Assert.Equal(new MomentStatistics(2.5, 0, 0), backend.Moments(constant));
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        var x = TestData.Normal(3, 6 * 64 * 100);
        Assert.Equal(Run(1), Run(3));

        MomentStatistics Run(int threads)
        {
            using var backend = new CpuBackend(threads);
            using var tensor = TestData.Tensor(backend, x, 6, 64, 100);
            return backend.Moments(tensor);
        }
    }

    [Fact]
    public void RejectsBadTensors()
    {
        using var backend = new CpuBackend();
        Rejection.Expect(() => backend.Moments(backend.Allocate(4, 5)), "activations", "[4, 5]", "rank 3");
        Rejection.Expect(() => backend.Moments(backend.Allocate(2, 0, 5)), "activations", "[2, 0, 5]");
        Rejection.Expect(() => backend.Moments(backend.Allocate(DType.Int32, 2, 3, 4)), "activations", "Int32");
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        using var backend = new CpuBackend();
        using var tensor = TestData.Tensor(backend, TestData.Normal(1, 4 * 128 * 96), 4, 128, 96);
        Allocations.AssertWarmCallAllocatesNothing(() => backend.Moments(tensor));
    }

    /// <summary>
    /// The simulations' measurement, directly: the T x T token covariance over samples (batch, channel), each token
    /// centred on its own mean, then mean off-diagonal / mean diagonal. The 1/(S-1) of the covariance cancels in
    /// the ratio and is left out.
    /// </summary>
    private static MomentStatistics Reference(double[] x, int batch, int tokens, int channels)
    {
        double At(int b, int t, int c) => x[(b * tokens + t) * channels + c];
        var means = new double[tokens];
        for (int t = 0; t < tokens; t++)
        {
            for (int b = 0; b < batch; b++)
                for (int c = 0; c < channels; c++)
                    means[t] += At(b, t, c);
            means[t] /= batch * channels;
        }
        double off = 0, diagonal = 0;
        for (int i = 0; i < tokens; i++)
            for (int j = 0; j < tokens; j++)
            {
                double covariance = 0;
                for (int b = 0; b < batch; b++)
                    for (int c = 0; c < channels; c++)
                        covariance += (At(b, i, c) - means[i]) * (At(b, j, c) - means[j]);
                if (i == j) diagonal += covariance;
                else off += covariance;
            }
        double mean = x.Average(), variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
        // 0/0 (one token, or no token varies) is reported as no correlation.
        double correlation = tokens > 1 && diagonal > 0 ? off / (tokens * (tokens - 1)) / (diagonal / tokens) : 0;
        return new MomentStatistics(mean, variance, correlation);
    }
}
