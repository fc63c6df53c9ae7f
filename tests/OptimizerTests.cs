using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>AdamW, global norm, clipping and scaling, against float64 references.</summary>
public sealed class OptimizerTests
{
    /// <summary>float32 machine epsilon, 2^-23.</summary>
    private const double Eps = 1.0 / (1 << 23);

    private static readonly AdamWOptions Options = new(LearningRate: 1e-2f, Beta1: 0.9f, Beta2: 0.99f, Epsilon: 1e-8f, WeightDecay: 0.1f);

    [Fact]
    public void AdamWFollowsTheFloat64ReferenceOverSeveralSteps()
    {
        using var backend = new CpuBackend();
        Gen.Select(Gen.Int[0, 11], Gen.Int[0, 53], Gen.Single[0.25f, 2f], Gen.Int[0, 1 << 20]).Sample((rows, columns, scale, seed) =>
        {
            int n = rows * columns;
            var p = TestData.RoundToSingle(TestData.Normal(seed, n));
            var m = new double[n];
            var v = new double[n];
            using var parameters = TestData.Tensor(backend, p, rows, columns);
            using var firstMoment = backend.Allocate(rows, columns);
            using var secondMoment = backend.Allocate(rows, columns);
            for (int step = 1; step <= 6; step++)
            {
                var g = TestData.RoundToSingle(TestData.Normal(seed + step, n));
                using var gradients = TestData.Tensor(backend, g, rows, columns);
                backend.AdamW(parameters, gradients, firstMoment, secondMoment, Options, step, scale);
                Reference(p, g, m, v, Options, step, scale);
                // Each step moves a parameter by about lr, computed in float32 to a few Eps of itself, and rounds
                // the parameter (Eps/2 of |p|): 6 steps stay within 8 Eps (|p| + lr) of the largest value.
                Numerics.AssertClose(p, TestData.Read(backend, parameters), 8 * Eps, 8 * Eps * Options.LearningRate * step, $"parameters after step {step}");
                Numerics.AssertClose(m, TestData.Read(backend, firstMoment), 8 * Eps, 0, $"first moment after step {step}");
                Numerics.AssertClose(v, TestData.Read(backend, secondMoment), 8 * Eps, 0, $"second moment after step {step}");
            }
        }, iter: 40, threads: 1);
    }

    [Fact]
    public void AdamWHandlesEveryTailLength()
    {
        using var backend = new CpuBackend();
        for (int n = 0; n <= 300; n++)
        {
            var p = TestData.RoundToSingle(TestData.Normal(n, n));
            var g = TestData.RoundToSingle(TestData.Normal(n + 1, n));
            var m = TestData.RoundToSingle(TestData.Normal(n + 2, n, 0.1));
            var v = TestData.RoundToSingle(TestData.Normal(n + 3, n, 0.1)).Select(Math.Abs).ToArray();
            using var parameters = TestData.Tensor(backend, p, n);
            using var gradients = TestData.Tensor(backend, g, n);
            using var firstMoment = TestData.Tensor(backend, m, n);
            using var secondMoment = TestData.Tensor(backend, v, n);
            backend.AdamW(parameters, gradients, firstMoment, secondMoment, Options, 1000);
            Reference(p, g, m, v, Options, 1000, 1f);
            Numerics.AssertClose(p, TestData.Read(backend, parameters), 4 * Eps, 4 * Eps * Options.LearningRate, $"parameters [{n}]");
            Numerics.AssertClose(m, TestData.Read(backend, firstMoment), 4 * Eps, 0, $"first moment [{n}]");
            Numerics.AssertClose(v, TestData.Read(backend, secondMoment), 4 * Eps, 0, $"second moment [{n}]");
        }
    }

    [Fact]
    public void GlobalNormAccumulatesAllTensorsInFloat64()
    {
        using var backend = new CpuBackend();
        Gen.Int[0, 300].Array[0, 6].Sample(lengths =>
        {
            var values = lengths.Select((n, i) => TestData.RoundToSingle(TestData.Normal(i + 17 * n, n, 1 + i))).ToArray();
            var tensors = values.Select(v => TestData.Tensor(backend, v, v.Length)).ToArray();
            double expected = Math.Sqrt(values.Sum(v => v.Sum(e => e * e)));
            // float64 sums of exact float64 squares: 1e-15 relative.
            Assert.Equal(expected, backend.GlobalNorm(tensors), Math.Max(expected, 1) * 1e-14);
            foreach (var t in tensors) t.Dispose();
        }, iter: 60, threads: 1);
    }

    [Fact]
    public void ClipScalesOnlyAboveTheLimitAndReturnsThePreClipNorm()
    {
        using var backend = new CpuBackend();
        var a = TestData.RoundToSingle(TestData.Normal(1, 1000));
        var b = TestData.RoundToSingle(TestData.Normal(2, 77, 3));
        double norm = Math.Sqrt(a.Sum(x => x * x) + b.Sum(x => x * x));
        using var ta = TestData.Tensor(backend, a, 1000);
        using var tb = TestData.Tensor(backend, b, 7, 11);

        Assert.Equal(norm, backend.ClipByGlobalNorm((float)(2 * norm), ta, tb), norm * 1e-14);
        Assert.Equal(a, TestData.Read(backend, ta));

        Assert.Equal(norm, backend.ClipByGlobalNorm(1f, ta, tb), norm * 1e-14);
        // Each value times the float32 factor: one rounding of each, and of the factor.
        Numerics.AssertClose(a.Select(x => x / norm).ToArray(), TestData.Read(backend, ta), 2 * Eps);
        Numerics.AssertClose(b.Select(x => x / norm).ToArray(), TestData.Read(backend, tb), 2 * Eps);
        Assert.Equal(1, backend.GlobalNorm(ta, tb), 4 * Eps);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void ClipReturnsANonFiniteNormAndScalesNothing(float poison)
    {
        using var backend = new CpuBackend();
        var a = TestData.Normal(1, 100);
        using var ta = TestData.Tensor(backend, a, 100);
        using var tb = TestData.Tensor(backend, [1, poison, 2], 3);
        double norm = backend.ClipByGlobalNorm(1f, ta, tb);
        Assert.False(double.IsFinite(norm));
        Assert.Equal(TestData.RoundToSingle(a), TestData.Read(backend, ta));
    }

    [Fact]
    public void ScaleMultipliesEveryElement()
    {
        using var backend = new CpuBackend();
        for (int n = 0; n <= 300; n += 7)
        {
            var x = TestData.RoundToSingle(TestData.Normal(n, n));
            using var t = TestData.Tensor(backend, x, n);
            backend.Scale(t, 0.37f);
            Assert.Equal(x.Select(v => (double)((float)v * 0.37f)), TestData.Read(backend, t));
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        int n = 5 * ElementWise.ChunkLength + 13;
        var p = TestData.Normal(1, n);
        var g = TestData.Normal(2, n);
        var serial = Run(1);
        var parallel = Run(3);
        Assert.Equal(serial.Norm, parallel.Norm);
        for (int i = 0; i < serial.State.Length; i++) Assert.Equal(serial.State[i], parallel.State[i]);

        (double Norm, double[][] State) Run(int threads)
        {
            using var backend = new CpuBackend(threads);
            using var parameters = TestData.Tensor(backend, p, n);
            using var gradients = TestData.Tensor(backend, g, n);
            using var m = backend.Allocate(n);
            using var v = backend.Allocate(n);
            double norm = backend.ClipByGlobalNorm(10f, gradients, parameters);
            backend.AdamW(parameters, gradients, m, v, Options, 1);
            backend.AdamW(parameters, gradients, m, v, Options, 2, 0.5f);
            return (norm, [TestData.Read(backend, parameters), TestData.Read(backend, m), TestData.Read(backend, v), TestData.Read(backend, gradients)]);
        }
    }

    [Fact]
    public void RejectsBadArguments()
    {
        using var backend = new CpuBackend();
        using var p = backend.Allocate(3, 4);
        using var g = backend.Allocate(3, 4);
        using var m = backend.Allocate(3, 4);
        using var v = backend.Allocate(3, 4);
        Rejection.Expect(() => backend.AdamW(p, backend.Allocate(4, 3), m, v, Options, 1), "gradients", "[4, 3]", "[3, 4]");
        Rejection.Expect(() => backend.AdamW(p, g, backend.Allocate(DType.Int32, 3, 4), v, Options, 1), "firstMoment", "Int32");
        Rejection.Expect(() => backend.AdamW(p, g, m, m, Options, 1), "firstMoment", "overlaps");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options with { LearningRate = float.NaN }, 1), "options.LearningRate", "NaN");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options with { LearningRate = -1e-3f }, 1), "options.LearningRate");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options with { Beta1 = 1f }, 1), "options.Beta1", "1");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options with { Beta2 = -0.5f }, 1), "options.Beta2");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options with { Epsilon = float.PositiveInfinity }, 1), "options.Epsilon");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options with { WeightDecay = float.NaN }, 1), "options.WeightDecay");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options, 0), "step", "0");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options, -3), "step", "-3");
        Rejection.Expect(() => backend.AdamW(p, g, m, v, Options, 1, float.NaN), "gradientScale", "NaN");
        Rejection.Expect(() => backend.GlobalNorm(p, backend.Allocate(DType.Int32, 2)), "tensors", "Int32");
        Rejection.Expect(() => backend.ClipByGlobalNorm(-1f, p), "maxNorm", "-1");
        Rejection.Expect(() => backend.ClipByGlobalNorm(float.NaN, p), "maxNorm", "NaN");
        Rejection.Expect(() => backend.Scale(p, float.PositiveInfinity), "factor");
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        using var backend = new CpuBackend();
        int n = 3 * ElementWise.ChunkLength + 5;
        using var p = TestData.Tensor(backend, TestData.Normal(1, n), n);
        using var g = TestData.Tensor(backend, TestData.Normal(2, n), n);
        using var m = backend.Allocate(n);
        using var v = backend.Allocate(n);
        Allocations.AssertWarmCallAllocatesNothing(() => backend.AdamW(p, g, m, v, Options, 3));
        Allocations.AssertWarmCallAllocatesNothing(() => backend.ClipByGlobalNorm(1e9f, g, m));
        Allocations.AssertWarmCallAllocatesNothing(() => backend.Scale(g, 1f));
    }

    /// <summary>One AdamW step in float64, in place on the arrays.</summary>
    private static void Reference(double[] p, double[] g, double[] m, double[] v, AdamWOptions o, int step, double scale)
    {
        double b1 = o.Beta1, b2 = o.Beta2;
        for (int i = 0; i < p.Length; i++)
        {
            double gi = scale * g[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            double mHat = m[i] / (1 - Math.Pow(b1, step)), vHat = v[i] / (1 - Math.Pow(b2, step));
            p[i] -= o.LearningRate * (mHat / (Math.Sqrt(vHat) + o.Epsilon) + o.WeightDecay * p[i]);
        }
    }
}
