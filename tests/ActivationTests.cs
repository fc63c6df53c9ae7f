using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>ReLU, both GeLUs and TAT's scaled leaky ReLU, forward and backward, against float64 references.</summary>
public sealed class ActivationTests
{
    /// <summary>float32 machine epsilon, 2^-23: a correctly rounded float32 result is within Eps/2 relative.</summary>
    private const double Eps = 1.0 / (1 << 23);

    /// <summary>Below this a float32 result is subnormal and has fewer significant bits; only an absolute bound applies.</summary>
    private const double Tiny = 1.1754943508222875e-38;

    /// <summary>
    /// Per-element relative bound of each forward. ReLU is exact. Leaky ReLU rounds its slope once and the product
    /// once: Eps. The tanh GeLU is evaluated in float64 and rounded once: Eps (Eps/2 would do, with margin for exp).
    /// The erf GeLU adds the erfc fit's 1.2e-7 (1 Eps) to the rounding: 2 Eps.
    /// </summary>
    private static double ForwardTolerance(ActivationKind kind) => kind switch
    {
        ActivationKind.Relu => 0,
        ActivationKind.GeluErf => 2 * Eps,
        _ => Eps,
    };

    /// <summary>Every kind; the leaky slopes are TAT's for chains of 16 and 192 activations (spa-theory.md 3.1).</summary>
    public static TheoryData<ActivationKind, float> Functions => new()
    {
        { ActivationKind.Relu, 0f },
        { ActivationKind.GeluErf, 0f },
        { ActivationKind.GeluTanh, 0f },
        { ActivationKind.ScaledLeakyRelu, 0.104499f },
        { ActivationKind.ScaledLeakyRelu, 0.673914f },
    };

    private static ActivationFunction Function(ActivationKind kind, float slope) => new(kind, slope);

    private static double Forward(ActivationFunction f, double x)
    {
        double a = f.NegativeSlope;
        return f.Kind switch
        {
            ActivationKind.Relu => Math.Max(x, 0),
            ActivationKind.GeluErf => x * Gaussian.Cdf(x),
            ActivationKind.GeluTanh => x * TanhGate(x),
            _ => Math.Sqrt(2 / (1 + a * a)) * (x >= 0 ? x : a * x),
        };
    }

    private static double Derivative(ActivationFunction f, double x)
    {
        double a = f.NegativeSlope;
        switch (f.Kind)
        {
            case ActivationKind.Relu: return x > 0 ? 1 : 0;
            case ActivationKind.GeluErf: return Gaussian.Cdf(x) + x * Gaussian.Pdf(x);
            case ActivationKind.GeluTanh:
                double k = Math.Sqrt(2 / Math.PI), u = k * (x + 0.044715 * x * x * x), tanh = Math.Tanh(u);
                return 0.5 * (1 + tanh) + 0.5 * x * (1 - tanh * tanh) * k * (1 + 3 * 0.044715 * x * x);
            default: return Math.Sqrt(2 / (1 + a * a)) * (x > 0 ? 1 : a);
        }
    }

    /// <summary>(1 + tanh(u)) / 2 with u = sqrt(2/pi)(x + 0.044715 x^3), written as 1 / (1 + exp(-2u)) so it does not cancel for u &lt;&lt; 0.</summary>
    private static double TanhGate(double x) => 1 / (1 + Math.Exp(-2 * Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    [Theory]
    [MemberData(nameof(Functions))]
    public void ForwardMatchesReferenceAtEveryLength(ActivationKind kind, float slope)
    {
        var f = Function(kind, slope);
        using var backend = new CpuBackend();
        for (int n = 0; n <= 300; n++)
        {
            var x = TestData.RoundToSingle(TestData.Normal(n, n, 3));
            using var input = TestData.Tensor(backend, x, n);
            using var output = backend.Allocate(n);
            backend.Activation(output, input, f);
            AssertRelative(x, TestData.Read(backend, output), f, ForwardTolerance(kind));
        }
    }

    [Theory]
    [InlineData(ActivationKind.GeluErf)]
    [InlineData(ActivationKind.GeluTanh)]
    public void GeluIsAccurateOverTheWholeRange(ActivationKind kind)
    {
        // Every 1/1024 from -14 (where x Phi(x) leaves the normal floats) to 10: the tails are where erf and tanh
        // forms lose precision in float32.
        var f = Function(kind, 0);
        var x = Enumerable.Range(0, 24 * 1024).Select(i => -14 + i / 1024.0).ToArray();
        using var backend = new CpuBackend();
        using var input = TestData.Tensor(backend, x, x.Length);
        using var output = backend.Allocate(x.Length);
        backend.Activation(output, input, f);
        AssertRelative(x, TestData.Read(backend, output), f, ForwardTolerance(kind));
    }

    [Fact]
    public void KnownValues()
    {
        using var backend = new CpuBackend();
        using var input = TestData.Tensor(backend, [1, -1, 0], 3);
        using var output = backend.Allocate(3);
        backend.Activation(output, input, ActivationFunction.GeluErf);
        // Phi(1) = 0.841344746068543 (normal table).
        Numerics.AssertClose([0.8413447460685429, -0.15865525393145707, 0], TestData.Read(backend, output), 2 * Eps);
        // spa-theory.md 3.1: the slope 0.024199 has output scale 1.413800.
        backend.Activation(output, input, ActivationFunction.ScaledLeakyRelu(0.024199f));
        Numerics.AssertClose([1.413800, -1.413800 * 0.024199, 0], TestData.Read(backend, output), 0, 1e-6);
    }

    [Theory]
    [MemberData(nameof(Functions))]
    public void InPlaceMatchesOutOfPlace(ActivationKind kind, float slope)
    {
        var f = Function(kind, slope);
        var x = TestData.Normal(5, 1000, 2);
        using var backend = new CpuBackend();
        using var input = TestData.Tensor(backend, x, 10, 100);
        using var output = backend.Allocate(10, 100);
        backend.Activation(output, input, f);
        backend.Activation(input, input, f);
        Assert.Equal(TestData.Read(backend, output), TestData.Read(backend, input));
    }

    [Theory]
    [MemberData(nameof(Functions))]
    public void BackwardMatchesFiniteDifferences(ActivationKind kind, float slope)
    {
        var f = Function(kind, slope);
        using var backend = new CpuBackend();
        Gen.Select(Gen.Int[0, 12], Gen.Int[0, 37], Gen.Int[0, 1 << 20]).Sample((rows, columns, seed) =>
        {
            int n = rows * columns;
            // Keep 1e-3 away from the kink of the piecewise-linear functions, where finite differences straddle it.
            var x = TestData.RoundToSingle(TestData.Normal(seed, n, 2).Select(v => Math.Abs(v) < 1e-3 ? Math.CopySign(1e-3 + Math.Abs(v), v) : v).ToArray());
            var w = TestData.RoundToSingle(TestData.Normal(seed + 1, n));
            var prior = TestData.RoundToSingle(TestData.Normal(seed + 2, n));
            var gradient = Numerics.Gradient(v => Numerics.Dot(w, v.Select(e => Forward(f, e)).ToArray()), x);
            using var input = TestData.Tensor(backend, x, rows, columns);
            using var gradOutput = TestData.Tensor(backend, w, rows, columns);
            using var gradInput = TestData.Tensor(backend, prior, rows, columns);
            backend.ActivationBackward(gradInput, gradOutput, input, f);
            // Two float32 roundings (product, sum) plus the erfc fit and the finite differences' ~1e-8: 8 Eps of the largest gradient.
            Numerics.AssertClose(prior.Zip(gradient, (p, g) => p + g).ToArray(), TestData.Read(backend, gradInput), 8 * Eps, what: $"{kind} gradInput [{rows}, {columns}]");
        }, iter: 25, threads: 1);
    }

    [Theory]
    [MemberData(nameof(Functions))]
    public void BackwardAccumulatesAtEveryLength(ActivationKind kind, float slope)
    {
        var f = Function(kind, slope);
        using var backend = new CpuBackend();
        for (int n = 0; n <= 300; n++)
        {
            var x = TestData.RoundToSingle(TestData.Normal(n, n, 3));
            var w = TestData.RoundToSingle(TestData.Normal(n + 1000, n));
            var prior = TestData.RoundToSingle(TestData.Normal(n + 2000, n));
            using var input = TestData.Tensor(backend, x, n);
            using var gradOutput = TestData.Tensor(backend, w, n);
            using var gradInput = TestData.Tensor(backend, prior, n);
            backend.ActivationBackward(gradInput, gradOutput, input, f);
            var expected = Enumerable.Range(0, n).Select(i => prior[i] + w[i] * Derivative(f, x[i])).ToArray();
            // Product and sum each round once (Eps/2 of the largest value), the erfc fit adds 1 Eps: 4 Eps.
            Numerics.AssertClose(expected, TestData.Read(backend, gradInput), 4 * Eps, what: $"{kind} gradInput [{n}]");
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        int n = 3 * ElementWise.ChunkLength + 77;
        var x = TestData.Normal(1, n, 3);
        var w = TestData.Normal(2, n);
        foreach (var f in new[] { ActivationFunction.Relu, ActivationFunction.GeluErf, ActivationFunction.GeluTanh, ActivationFunction.ScaledLeakyRelu(0.2f) })
        {
            var (serialOut, serialGrad) = Run(1);
            var (parallelOut, parallelGrad) = Run(3);
            Assert.Equal(serialOut, parallelOut);
            Assert.Equal(serialGrad, parallelGrad);

            (double[], double[]) Run(int threads)
            {
                using var backend = new CpuBackend(threads);
                using var input = TestData.Tensor(backend, x, n);
                using var gradOutput = TestData.Tensor(backend, w, n);
                using var output = backend.Allocate(n);
                using var gradInput = backend.Allocate(n);
                backend.Activation(output, input, f);
                backend.ActivationBackward(gradInput, gradOutput, input, f);
                return (TestData.Read(backend, output), TestData.Read(backend, gradInput));
            }
        }
    }

    [Fact]
    public void RejectsBadOperands()
    {
        using var backend = new CpuBackend();
        using var a = backend.Allocate(2, 3);
        using var b = backend.Allocate(3, 2);
        using var ids = backend.Allocate(DType.Int32, 2, 3);
        using var storage = backend.Allocate(12);
        var low = storage.Slice(0, 2, 3);
        var shifted = storage.Slice(1, 2, 3);
        Rejection.Expect(() => backend.Activation(b, a, ActivationFunction.Relu), "output", "[3, 2]", "[2, 3]");
        Rejection.Expect(() => backend.Activation(a, ids, ActivationFunction.Relu), "input", "Int32");
        Rejection.Expect(() => backend.Activation(shifted, low, ActivationFunction.Relu), "output", "overlaps");
        Rejection.Expect(() => backend.Activation(a, a, ActivationFunction.ScaledLeakyRelu(float.NaN)), "function.NegativeSlope", "NaN");
        Rejection.Expect(() => backend.Activation(a, a, new ActivationFunction((ActivationKind)99)), "function", "99");
        Rejection.Expect(() => backend.ActivationBackward(a, b, a, ActivationFunction.GeluErf), "gradOutput", "[3, 2]", "[2, 3]");
        Rejection.Expect(() => backend.ActivationBackward(low, low, a, ActivationFunction.GeluErf), "gradInput", "overlaps");
        Rejection.Expect(() => backend.ActivationBackward(low, a, shifted, ActivationFunction.GeluErf), "gradInput", "overlaps");
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        using var backend = new CpuBackend();
        int n = 2 * ElementWise.ChunkLength + 5;
        using var x = TestData.Tensor(backend, TestData.Normal(1, n), n);
        using var y = backend.Allocate(n);
        using var g = backend.Allocate(n);
        foreach (var f in new[] { ActivationFunction.Relu, ActivationFunction.GeluErf, ActivationFunction.GeluTanh, ActivationFunction.ScaledLeakyRelu(0.2f) })
        {
            Allocations.AssertWarmCallAllocatesNothing(() => backend.Activation(y, x, f));
            Allocations.AssertWarmCallAllocatesNothing(() => backend.ActivationBackward(g, y, x, f));
        }
    }

    /// <summary>Each actual value within tolerance * |reference| of the float64 reference (absolute below the normal range).</summary>
    private static void AssertRelative(double[] x, double[] actual, ActivationFunction f, double tolerance)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double expected = Forward(f, x[i]), error = Math.Abs(actual[i] - expected);
            Assert.True(error <= tolerance * Math.Abs(expected) || (Math.Abs(expected) < Tiny && error < Tiny),
                $"{f.Kind}({x[i]:R}) = {actual[i]:R}, expected {expected:R} (relative error {error / Math.Abs(expected):E2} > {tolerance:E2})");
        }
    }
}
