using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Tests;

/// <summary><see cref="Backend.RandomNormal"/>: the documented Box-Muller layout over Philox words, and the draws' law.</summary>
public sealed class RandomNormalTests
{
    private static float[] Draw(CpuBackend backend, int count, ulong seed, ulong offset, float mean = 0f, float std = 1f)
    {
        using var tensor = backend.Allocate(count);
        backend.RandomNormal(tensor, seed, offset, mean, std);
        var values = new float[count];
        backend.Download<float>(values, tensor);
        return values;
    }

    [Fact]
    public void EveryLengthFollowsTheBoxMullerLayoutOfThePhiloxWords()
    {
        // An independent float64 Box-Muller over Philox.Word: element 4k + 2j + m uses words (4k + 2j, 4k + 2j + 1),
        // u = (word + 1/2) 2^-32, cos for m = 0 and sin for m = 1. Lengths 0..41 cover every partial last block; 2^16 + 6
        // spans the CPU backend's work chunks (2^15 elements), which must start on whole blocks. Philox.Normals's host
        // fill must give the same normals before rounding.
        using var backend = new CpuBackend();
        ulong seed = 0x0123456789abcdef, offset = (1UL << 40) + 3;
        foreach (int count in Enumerable.Range(0, 42).Append((1 << 16) + 6))
        {
            var values = Draw(backend, count, seed, offset, mean: -0.5f, std: 2f);
            var host = new double[count]; // the host's filler (orthogonal init, simulate's head gradient): same values
            Philox.Normals(host, seed, offset);
            for (int i = 0; i < count; i++)
            {
                long pair = i & ~1L;
                double u = (Philox.Word(seed, offset, pair) + 0.5) / 4294967296.0;
                double v = (Philox.Word(seed, offset, pair + 1) + 0.5) / 4294967296.0;
                double radius = Math.Sqrt(-2 * Math.Log(u)), angle = 2 * Math.PI * v;
                double normal = radius * ((i & 1) == 0 ? Math.Cos(angle) : Math.Sin(angle));
                Assert.Equal((float)(-0.5 + 2 * normal), values[i]);
                Assert.Equal(normal, host[i], 1e-12); // SinCos against Sin and Cos: the last bits may differ
            }
        }
    }

    [Fact]
    public void ALargeDrawHasTheNormalLaw()
    {
        // n = 2^20: the mean's sd is 1e-3, the variance's sqrt(2/n) = 1.4e-3, P(|x| < 1)'s 4.5e-4; bounds are ~5 sd.
        using var backend = new CpuBackend();
        const int n = 1 << 20;
        var values = Draw(backend, n, seed: 11, offset: 0);
        double mean = values.Average(x => (double)x);
        double variance = values.Sum(x => (x - mean) * (x - mean)) / n;
        double withinOne = values.Count(x => Math.Abs(x) < 1) / (double)n;
        double beyondThree = values.Count(x => Math.Abs(x) > 3) / (double)n;
        double fourth = values.Sum(x => Math.Pow(x - mean, 4)) / n / (variance * variance);
        Assert.InRange(mean, -0.005, 0.005);
        Assert.InRange(variance, 0.993, 1.007);
        Assert.InRange(withinOne, 0.6827 - 0.0023, 0.6827 + 0.0023); // erf(1 / sqrt 2)
        Assert.InRange(beyondThree, 0.0027 - 0.0003, 0.0027 + 0.0003); // erfc(3 / sqrt 2) = 0.0027, sd 5e-5
        Assert.InRange(fourth, 2.97, 3.03); // kurtosis 3; sd sqrt(96 / n) = 0.0096
        Assert.All(values, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void StreamsAreReproducibleAndOffsetsIndependent()
    {
        using var backend = new CpuBackend();
        var first = Draw(backend, 4096, seed: 3, offset: 7);
        Assert.Equal(first, Draw(backend, 4096, seed: 3, offset: 7));
        var other = Draw(backend, 4096, seed: 3, offset: 8);
        double correlation = first.Zip(other, (a, b) => (double)a * b).Sum() / 4096; // sd 1/64
        Assert.InRange(correlation, -0.08, 0.08);
        Assert.NotEqual(first, Draw(backend, 4096, seed: 4, offset: 7));
    }

    [Fact]
    public void NonFiniteMeanOrStdIsRejectedByName()
    {
        using var backend = new CpuBackend();
        using var tensor = backend.Allocate(4);
        Assert.Contains("std", Assert.Throws<ArgumentException>(() => backend.RandomNormal(tensor, 1, 0, 0f, float.NaN)).Message);
        Assert.Contains("mean", Assert.Throws<ArgumentException>(() => backend.RandomNormal(tensor, 1, 0, float.PositiveInfinity, 1f)).Message);
    }
}
