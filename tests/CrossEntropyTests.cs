using System.Runtime.Intrinsics;
using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>Fused softmax + cross-entropy with an ignore index, against float64 references.</summary>
public sealed class CrossEntropyTests
{
    /// <summary>float32 machine epsilon, 2^-23.</summary>
    private const double Eps = 1.0 / (1 << 23);

    private const int Ignore = -100;

    /// <summary>One random case: rows, classes (1..300 reaches every vector tail), logit scale, seed.</summary>
    private static readonly Gen<(int Rows, int Classes, double Scale, int Seed)> Cases =
        Gen.Select(Gen.Int[0, 13], Gen.Int[1, 300], Gen.OneOf(Gen.Const(1.0), Gen.Const(10.0)), Gen.Int[0, 1 << 20]);

    [Fact]
    public void LossesMatchTheReference()
    {
        using var backend = new CpuBackend();
        Cases.Sample((rows, classes, scale, seed) =>
        {
            var logits = TestData.RoundToSingle(TestData.Normal(seed, rows * classes, scale));
            var targets = Targets(seed, rows, classes);
            using var logitsTensor = TestData.Tensor(backend, logits, rows, classes);
            using var targetsTensor = TestData.IntTensor(backend, targets, rows);
            using var losses = backend.Allocate(rows);
            backend.SoftmaxCrossEntropy(losses, logitsTensor, targetsTensor, Ignore);
            var expected = Enumerable.Range(0, rows).Select(r => Loss(logits.AsSpan(r * classes, classes), targets[r])).ToArray();
            // exp and the sum are float32/float64; the loss (>= 0) is rounded once: a few Eps of the largest, plus
            // float32 exp's ~1 ulp on each term for losses near 0.
            Numerics.AssertClose(expected, TestData.Read(backend, losses), 4 * Eps, 4 * Eps, $"losses [{rows}, {classes}]");
        }, iter: 80, threads: 1);
    }

    [Fact]
    public void BackwardMatchesFiniteDifferencesAndAccumulates()
    {
        using var backend = new CpuBackend();
        Cases.Sample((rows, classes, scale, seed) =>
        {
            classes = Math.Min(classes, 40);
            var logits = TestData.RoundToSingle(TestData.Normal(seed, rows * classes, scale));
            var targets = Targets(seed, rows, classes);
            var g = TestData.RoundToSingle(TestData.Normal(seed + 1, rows));
            var prior = TestData.RoundToSingle(TestData.Normal(seed + 2, rows * classes));
            // loss = sum_i g_i loss_i(logits).
            double Total(double[] z) => Enumerable.Range(0, rows).Sum(r => g[r] * Loss(z.AsSpan(r * classes, classes), targets[r]));
            var gradient = Numerics.Gradient(Total, logits);

            using var logitsTensor = TestData.Tensor(backend, logits, rows, classes);
            using var targetsTensor = TestData.IntTensor(backend, targets, rows);
            using var gradLosses = TestData.Tensor(backend, g, rows);
            using var gradLogits = TestData.Tensor(backend, prior, rows, classes);
            backend.SoftmaxCrossEntropyBackward(gradLogits, gradLosses, logitsTensor, targetsTensor, Ignore);
            var expected = prior.Zip(gradient, (a, b) => a + b).ToArray();
            // Ignored rows are left exactly as they were.
            for (int r = 0; r < rows; r++)
                if (targets[r] == Ignore)
                    Assert.Equal(prior.AsSpan(r * classes, classes).ToArray(), TestData.Read(backend, gradLogits).AsSpan(r * classes, classes).ToArray());
            // float32 exp (~1 ulp) times a rounded scale, then one addition: 8 Eps of the largest gradient.
            Numerics.AssertClose(expected, TestData.Read(backend, gradLogits), 8 * Eps, 1e-8, $"gradLogits [{rows}, {classes}]");
        }, iter: 40, threads: 1);
    }

    [Fact]
    public void SoftmaxExponentialIsWithinOneUlpAtBothWidths()
    {
        // The kernel's own e^x: 1.01 ulp measured; 1.05 allowed. Exact at 0 so a certain row sums to exactly 1.
        var random = new Random(6);
        var x = Enumerable.Range(0, 20000).Select(_ => (float)(-87.3 + 176 * random.NextDouble()))
            .Concat([0f, float.NegativeInfinity, -1000f, 1000f, float.NaN, -87.3f, 88.7f, 1f]).ToArray();
        foreach (var e in new[] { Exp512(x), Exp256(x) })
        {
            for (int i = 0; i < x.Length; i++)
            {
                if (!float.IsFinite(x[i]) || Math.Abs(x[i]) > 88.72f) continue;
                float nearest = MathF.Exp(x[i]);
                Assert.InRange(Math.Abs(e[i] - Math.Exp(x[i])) / (MathF.BitIncrement(nearest) - nearest), 0, 1.05);
            }
            Assert.Equal([1f, 0f, 0f, float.PositiveInfinity], e[20000..20004]);
            Assert.True(float.IsNaN(e[20004]));
        }

        static float[] Exp512(float[] x) => [.. x.Chunk(16).SelectMany(c => Values(VectorMath.Exp<Width512, Vector512<float>, Vector512<double>>(Vector512.Create(Padded(c, 16)))).Take(c.Length))];
        static float[] Exp256(float[] x) => [.. x.Chunk(8).SelectMany(c => Values(VectorMath.Exp<Width256, Vector256<float>, Vector256<double>>(Vector256.Create(Padded(c, 8)))).Take(c.Length))];
        static float[] Padded(float[] c, int n) => [.. c, .. new float[n - c.Length]];
        static float[] Values<T>(T v) where T : struct => System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>([v]).ToArray();
    }

    [Fact]
    public void HugeLogitsStayFinite()
    {
        // Logits near 1e4 overflow exp in float32 unless the row maximum is subtracted.
        using var backend = new CpuBackend();
        double[] logits = [1e4, 1e4 - 1, 1e4 - 3, -1e4, 1e4 - 0.5, 9990];
        int[] targets = [1, 0];
        using var logitsTensor = TestData.Tensor(backend, logits, 2, 3);
        using var targetsTensor = TestData.IntTensor(backend, targets, 2);
        using var losses = backend.Allocate(2);
        using var gradLogits = backend.Allocate(2, 3);
        using var ones = TestData.Tensor(backend, [1, 1], 2);
        backend.SoftmaxCrossEntropy(losses, logitsTensor, targetsTensor, Ignore);
        backend.SoftmaxCrossEntropyBackward(gradLogits, ones, logitsTensor, targetsTensor, Ignore);
        var expectedLoss = new[] { Loss(logits.AsSpan(0, 3), 1), Loss(logits.AsSpan(3, 3), 0) };
        Numerics.AssertClose(expectedLoss, TestData.Read(backend, losses), 4 * Eps, 4 * Eps);
        var gradients = TestData.Read(backend, gradLogits);
        Assert.All(gradients, v => Assert.True(double.IsFinite(v)));
        Assert.Equal(0, gradients.Sum(), 1e-6);
        Assert.Equal(-1, gradients[3], 1e-6); // the -1e4 target has probability e^-20000 = 0
    }

    [Fact]
    public void ConfidentRowsKeepTheirSmallLossAndGradient()
    {
        // p_target = 1 - 1e-6: loss and gradient are ~1e-6, which float32 p - 1 would lose to cancellation.
        using var backend = new CpuBackend();
        double gap = Math.Log(1e6 * 999);
        double[] logits = [.. Enumerable.Repeat(0.0, 999), gap];
        using var logitsTensor = TestData.Tensor(backend, logits, 1, 1000);
        using var targetsTensor = TestData.IntTensor(backend, [999], 1);
        using var losses = backend.Allocate(1);
        using var gradLogits = backend.Allocate(1, 1000);
        using var one = TestData.Tensor(backend, [1], 1);
        backend.SoftmaxCrossEntropy(losses, logitsTensor, targetsTensor, Ignore);
        backend.SoftmaxCrossEntropyBackward(gradLogits, one, logitsTensor, targetsTensor, Ignore);
        var rounded = TestData.RoundToSingle(logits);
        double sum = rounded.Sum(v => Math.Exp(v - rounded[999])), p = 1 / sum;
        Assert.Equal(Math.Log(sum), TestData.Read(backend, losses)[0], Math.Log(sum) * 1e-5);
        Assert.Equal(p - 1, TestData.Read(backend, gradLogits)[999], Math.Abs(p - 1) * 1e-5);
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        int rows = 33, classes = 5003;
        var logits = TestData.Normal(1, rows * classes, 3);
        var targets = Targets(2, rows, classes);
        var g = TestData.Normal(3, rows);
        var serial = Run(1);
        var parallel = Run(3);
        Assert.Equal(serial.Losses, parallel.Losses);
        Assert.Equal(serial.Gradients, parallel.Gradients);

        (double[] Losses, double[] Gradients) Run(int threads)
        {
            using var backend = new CpuBackend(threads);
            using var logitsTensor = TestData.Tensor(backend, logits, rows, classes);
            using var targetsTensor = TestData.IntTensor(backend, targets, rows);
            using var gradLosses = TestData.Tensor(backend, g, rows);
            using var losses = backend.Allocate(rows);
            using var gradLogits = backend.Allocate(rows, classes);
            backend.SoftmaxCrossEntropy(losses, logitsTensor, targetsTensor, Ignore);
            backend.SoftmaxCrossEntropyBackward(gradLogits, gradLosses, logitsTensor, targetsTensor, Ignore);
            return (TestData.Read(backend, losses), TestData.Read(backend, gradLogits));
        }
    }

    [Theory]
    [InlineData(7)]
    [InlineData(-1)]
    [InlineData(-100)]
    public void OutOfRangeTargetNamesItsIndexAndValue(int bad)
    {
        using var backend = new CpuBackend();
        using var logits = backend.Allocate(4, 7);
        using var targets = TestData.IntTensor(backend, [0, 6, bad, -5], 4);
        using var losses = backend.Allocate(4);
        using var gradLosses = backend.Allocate(4);
        using var gradLogits = backend.Allocate(4, 7);
        // -5 is the ignore index here, so only the bad value (at index 2) is out of range.
        Rejection.Expect(() => backend.SoftmaxCrossEntropy(losses, logits, targets, -5), "targets", $"holds {bad} at flat index 2", "[0, 7)", "ignore index -5");
        Rejection.Expect(() => backend.SoftmaxCrossEntropyBackward(gradLogits, gradLosses, logits, targets, -5), "targets", $"holds {bad} at flat index 2");
    }

    [Fact]
    public void RejectsBadShapes()
    {
        using var backend = new CpuBackend();
        using var logits = backend.Allocate(4, 7);
        using var targets = backend.Allocate(DType.Int32, 4);
        using var losses = backend.Allocate(4);
        Rejection.Expect(() => backend.SoftmaxCrossEntropy(backend.Allocate(5), logits, targets), "losses", "[5]", "[4]", "logits [4, 7]");
        Rejection.Expect(() => backend.SoftmaxCrossEntropy(losses, logits, backend.Allocate(DType.Int32, 3)), "targets", "[3]", "[4]");
        Rejection.Expect(() => backend.SoftmaxCrossEntropy(losses, logits, losses), "targets", "Float32", "Int32");
        Rejection.Expect(() => backend.SoftmaxCrossEntropy(losses, backend.Allocate(28), targets), "logits", "rank");
        Rejection.Expect(() => backend.SoftmaxCrossEntropy(logits.Slice(0, 4), logits, targets), "losses", "overlaps");
        Rejection.Expect(() => backend.SoftmaxCrossEntropyBackward(backend.Allocate(7, 4), losses, logits, targets), "gradLogits", "[7, 4]", "[4, 7]");
        Rejection.Expect(() => backend.SoftmaxCrossEntropyBackward(logits, losses, logits, targets), "gradLogits", "overlaps");
        Rejection.Expect(() => backend.SoftmaxCrossEntropyBackward(backend.Allocate(4, 7), backend.Allocate(2), logits, targets), "gradLosses", "[2]", "[4]");
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        using var backend = new CpuBackend();
        using var logits = TestData.Tensor(backend, TestData.Normal(1, 64 * 1000), 64, 1000);
        using var targets = TestData.IntTensor(backend, Targets(2, 64, 1000), 64);
        using var losses = backend.Allocate(64);
        using var gradLogits = backend.Allocate(64, 1000);
        Allocations.AssertWarmCallAllocatesNothing(() => backend.SoftmaxCrossEntropy(losses, logits, targets));
        Allocations.AssertWarmCallAllocatesNothing(() => backend.SoftmaxCrossEntropyBackward(gradLogits, losses, logits, targets));
    }

    /// <summary>Random targets in [0, classes), about one in five replaced by the ignore index.</summary>
    private static int[] Targets(int seed, int rows, int classes)
    {
        var targets = TestData.Integers(seed, rows, classes);
        var ignored = TestData.Integers(seed + 7, rows, 5);
        return targets.Select((t, i) => ignored[i] == 0 ? Ignore : t).ToArray();
    }

    /// <summary>logsumexp(row) - row[target] in float64 (0 for the ignore index), shifted by the maximum.</summary>
    private static double Loss(ReadOnlySpan<double> row, int target)
    {
        if (target == Ignore) return 0;
        double max = double.NegativeInfinity, sum = 0;
        foreach (var v in row) max = Math.Max(max, v);
        foreach (var v in row) sum += Math.Exp(v - max);
        return Math.Log(sum) + max - row[target];
    }
}
