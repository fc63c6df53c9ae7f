using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>
/// <see cref="Backend.MatMul"/> and <see cref="Backend.MatMulBackward"/> on the CPU backend: batched and shared
/// (broadcast) operands, bias, every transpose combination, against float64 references written here; the
/// backward against central finite differences of the float64 forward.
/// </summary>
public sealed class MatMulTests : IDisposable
{
    private readonly CpuBackend _backend = new();

    public void Dispose() => _backend.Dispose();

    /// <summary>Rank of a and b (3 = batched, 2 = shared by the batch), transposes, and whether there is a bias.</summary>
    public static TheoryData<int, int, bool, bool, bool> Layouts()
    {
        var data = new TheoryData<int, int, bool, bool, bool>();
        foreach (var (rankA, rankB) in new[] { (2, 2), (3, 3), (3, 2), (2, 3) })
            foreach (bool transposeA in new[] { false, true })
                foreach (bool transposeB in new[] { false, true })
                    foreach (bool withBias in new[] { false, true })
                        data.Add(rankA, rankB, transposeA, transposeB, withBias);
        return data;
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void ForwardMatchesTheReference(int rankA, int rankB, bool transposeA, bool transposeB, bool withBias)
    {
        var p = new Product(rankA, rankB, transposeA, transposeB, batch: 3, m: 5, n: 6, k: 7, withBias, seed: rankA * 8 + rankB);
        // beta = 0 must not read the output: NaN there would show.
        p.VerifyForward(_backend, alpha: 0.75f, beta: 0f, initial: float.NaN);
        p.VerifyForward(_backend, alpha: -1.5f, beta: 0.5f, initial: 2f);
    }

    [Theory]
    [InlineData(3, 2, false, true)]  // a Linear layer: x [batch, tokens, in] * weight [out, in]^T, flattened to one GEMM
    [InlineData(3, 3, false, false)] // large batched products, each split over the pool
    [InlineData(2, 3, true, false)]  // a shared a with batched b
    public void LargeProductsMatchTheReference(int rankA, int rankB, bool transposeA, bool transposeB)
    {
        // Each product is above the GEMM's parallel threshold, and the output is large enough to split the bias work.
        var p = new Product(rankA, rankB, transposeA, transposeB, batch: 2, m: 256, n: 128, k: 40, withBias: true, seed: 7);
        p.VerifyForward(_backend, alpha: 1f, beta: 0f, initial: float.NaN);
        p.VerifyBackward(_backend, alpha: 0.5f, finiteDifferences: false);
    }

    [Fact]
    public void RandomShapesMatchTheReference()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[0, 12], Gen.Int[0, 12], Gen.Int[0, 12], Gen.Int[0, 15])
            .Sample((batch, m, n, k, layout) =>
                new Product(2 + (layout & 1), 2 + ((layout >> 1) & 1), (layout & 4) != 0, (layout & 8) != 0, batch, m, n, k,
                        withBias: (m + n) % 2 == 0, seed: batch * 4096 + m * 256 + n * 16 + k)
                    .VerifyForward(_backend, alpha: 1.25f, beta: 0f, initial: float.NaN), iter: 100, threads: 1);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void BackwardMatchesFiniteDifferencesAndAccumulates(int rankA, int rankB, bool transposeA, bool transposeB, bool withBias)
    {
        var p = new Product(rankA, rankB, transposeA, transposeB, batch: 2, m: 3, n: 5, k: 4, withBias, seed: 100 + rankA * 8 + rankB);
        p.VerifyBackward(_backend, alpha: 0.7f, finiteDifferences: true);
    }

    [Fact]
    public void NullGradientsAreSkipped()
    {
        var p = new Product(3, 2, false, true, batch: 2, m: 3, n: 5, k: 4, withBias: true, seed: 3);
        using var a = TestData.Tensor(_backend, p.A, p.DimsA);
        using var b = TestData.Tensor(_backend, p.B, p.DimsB);
        using var gradOutput = _backend.Allocate(p.DimsOutput);
        using var gradB = _backend.Allocate(p.DimsB);
        _backend.Upload<float>(gradOutput, Enumerable.Repeat(1f, (int)gradOutput.ElementCount).ToArray());
        _backend.MatMulBackward(null, gradB, null, gradOutput, a, b, transposeB: true);
        Assert.Contains(TestData.Read(_backend, gradB), v => v != 0);
    }

    [Fact]
    public void OpsAllocateNothingOnceWarm()
    {
        // One thread, so every byte the ops allocate is counted on this one.
        using var backend = new CpuBackend(threadCount: 1);
        using var a = backend.Allocate(4, 40, 30);
        using var b = backend.Allocate(50, 30);
        using var bias = backend.Allocate(50);
        using var output = backend.Allocate(4, 40, 50);
        using var gradA = backend.Allocate(4, 40, 30);
        using var gradB = backend.Allocate(50, 30);
        using var gradBias = backend.Allocate(50);
        void Step()
        {
            backend.MatMul(output, a, b, transposeB: true, bias: bias);
            backend.MatMulBackward(gradA, gradB, gradBias, output, a, b, transposeB: true);
            backend.MatMul(gradA, output, b);
        }
        Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void MismatchedInnerDimensionNamesTheOperandAndShapes()
    {
        using var output = _backend.Allocate(3, 7);
        using var a = _backend.Allocate(3, 4);
        using var b = _backend.Allocate(5, 7);
        AssertRejected(() => _backend.MatMul(output, a, b), "b", "operand 'b' has shape [5, 7]", "a [3, 4], transposeA false");
    }

    [Fact]
    public void WrongRankIsRejected()
    {
        using var output = _backend.Allocate(3, 7);
        using var vector = _backend.Allocate(12);
        using var rank4 = _backend.Allocate(1, 1, 3, 4);
        using var b = _backend.Allocate(4, 7);
        AssertRejected(() => _backend.MatMul(output, vector, b), "a", "operand 'a' has shape [12] (rank 1)");
        AssertRejected(() => _backend.MatMul(output, rank4, b), "a", "operand 'a' has shape [1, 1, 3, 4]");
    }

    [Fact]
    public void MismatchedBatchIsRejected()
    {
        using var output = _backend.Allocate(2, 3, 5);
        using var a = _backend.Allocate(2, 3, 4);
        using var b = _backend.Allocate(3, 4, 5);
        AssertRejected(() => _backend.MatMul(output, a, b), "b", "operand 'b' has shape [3, 4, 5]", "a [2, 3, 4]");
    }

    [Fact]
    public void WrongOutputShapeIsRejected()
    {
        using var a = _backend.Allocate(3, 4);
        using var batched = _backend.Allocate(2, 3, 4);
        using var b = _backend.Allocate(7, 4);
        using var output = _backend.Allocate(3, 6);
        AssertRejected(() => _backend.MatMul(output, a, b, transposeB: true), "output",
            "operand 'output' has shape [3, 6] but [3, 7] is required", "b [7, 4], transposeB true");
        AssertRejected(() => _backend.MatMul(output, batched, b, transposeB: true), "output", "[2, 3, 7] is required");
    }

    [Fact]
    public void ShortBiasIsRejected()
    {
        using var a = _backend.Allocate(3, 4);
        using var b = _backend.Allocate(4, 7);
        using var output = _backend.Allocate(3, 7);
        using var bias = _backend.Allocate(6);
        AssertRejected(() => _backend.MatMul(output, a, b, bias: bias), "bias", "operand 'bias' has shape [6] but [7] is required", "a [3, 4]");
        AssertRejected(() => _backend.MatMulBackward(null, null, bias, output, a, b), "gradBias", "operand 'gradBias' has shape [6] but [7] is required");
    }

    [Fact]
    public void NonFiniteScalesAreRejected()
    {
        using var a = _backend.Allocate(3, 4);
        using var b = _backend.Allocate(4, 7);
        using var output = _backend.Allocate(3, 7);
        AssertRejected(() => _backend.MatMul(output, a, b, alpha: float.NaN), "alpha", "'alpha' must be finite", "a [3, 4], transposeA false, b [4, 7]");
        AssertRejected(() => _backend.MatMul(output, a, b, beta: float.PositiveInfinity), "beta", "'beta' must be finite");
        AssertRejected(() => _backend.MatMulBackward(null, null, null, output, a, b, alpha: float.NaN), "alpha", "'alpha' must be finite");
    }

    [Fact]
    public void BackwardShapesAreChecked()
    {
        using var a = _backend.Allocate(2, 3, 4);
        using var b = _backend.Allocate(4, 5);
        using var gradOutput = _backend.Allocate(2, 3, 5);
        using var unbatched = _backend.Allocate(3, 5);
        using var transposed = _backend.Allocate(5, 4);
        AssertRejected(() => _backend.MatMulBackward(null, transposed, null, gradOutput, a, b), "gradB",
            "operand 'gradB' has shape [5, 4] but must match 'b' [4, 5]");
        AssertRejected(() => _backend.MatMulBackward(null, null, null, unbatched, a, b), "gradOutput",
            "operand 'gradOutput' has shape [3, 5] but [2, 3, 5] is required");
    }

    [Fact]
    public void OutputOverlappingAnInputIsRejected()
    {
        using var storage = _backend.Allocate(2, 4, 4);
        var a = storage.Slice(0, 4, 4);
        var b = storage.Slice(16, 4, 4);
        AssertRejected(() => _backend.MatMul(a, a, b), "output", "operand 'output' [4, 4] overlaps 'a' [4, 4]");
        AssertRejected(() => _backend.MatMulBackward(b, null, null, a, a, b), "gradA", "operand 'gradA' [4, 4] overlaps 'b' [4, 4]");
    }

    /// <summary>The call throws an <see cref="ArgumentException"/> for <paramref name="parameter"/> whose message holds every fragment.</summary>
    private static void AssertRejected(Action call, string parameter, params string[] fragments)
    {
        var ex = Assert.Throws<ArgumentException>(call);
        Assert.Equal(parameter, ex.ParamName);
        foreach (var fragment in fragments) Assert.Contains(fragment, ex.Message);
    }

    /// <summary>One product's operands in float64 (rounded to float32), its float64 forward and gradients.</summary>
    private sealed class Product
    {
        private readonly int _batch, _m, _n, _k;
        private readonly bool _batchedA, _batchedB, _transposeA, _transposeB;

        public Product(int rankA, int rankB, bool transposeA, bool transposeB, int batch, int m, int n, int k, bool withBias, int seed)
        {
            (_batchedA, _batchedB, _transposeA, _transposeB) = (rankA == 3, rankB == 3, transposeA, transposeB);
            (_batch, _m, _n, _k) = (_batchedA || _batchedB ? batch : 1, m, n, k);
            DimsA = Dims(_batchedA, transposeA ? [k, m] : [m, k]);
            DimsB = Dims(_batchedB, transposeB ? [n, k] : [k, n]);
            DimsOutput = Dims(_batchedA || _batchedB, [m, n]);
            A = TestData.RoundToSingle(TestData.Normal(seed, Count(DimsA)));
            B = TestData.RoundToSingle(TestData.Normal(seed + 1, Count(DimsB)));
            Bias = withBias ? TestData.RoundToSingle(TestData.Normal(seed + 2, n)) : null;
        }

        public int[] DimsA { get; }
        public int[] DimsB { get; }
        public int[] DimsOutput { get; }
        public double[] A { get; }
        public double[] B { get; }
        public double[]? Bias { get; }

        /// <summary>output = alpha * op(a) op(b) + beta * initial + bias, against the float64 forward.</summary>
        public void VerifyForward(Backend backend, float alpha, float beta, float initial)
        {
            using var a = TestData.Tensor(backend, A, DimsA);
            using var b = TestData.Tensor(backend, B, DimsB);
            using var bias = Bias is null ? null : TestData.Tensor(backend, Bias, _n);
            using var output = backend.Allocate(DimsOutput);
            backend.Upload<float>(output, Enumerable.Repeat(initial, (int)output.ElementCount).ToArray());
            backend.MatMul(output, a, b, _transposeA, _transposeB, alpha, beta, bias);
            var expected = Forward(A, B, Bias, alpha);
            if (beta != 0) for (int i = 0; i < expected.Length; i++) expected[i] += beta * (double)initial;
            Numerics.AssertClose(expected, TestData.Read(backend, output), relative: 1e-5, absolute: 1e-6, what: Describe("output"));
        }

        /// <summary>
        /// Gradients of loss = sum(w * output) for random w, accumulated onto random initial gradients, against
        /// central finite differences of the float64 forward (or, for large products, its analytic gradient).
        /// </summary>
        public void VerifyBackward(Backend backend, float alpha, bool finiteDifferences)
        {
            var weights = TestData.RoundToSingle(TestData.Normal(17, Count(DimsOutput)));
            var initialA = TestData.Normal(18, A.Length);
            var initialB = TestData.Normal(19, B.Length);
            var initialBias = TestData.Normal(20, _n);
            using var a = TestData.Tensor(backend, A, DimsA);
            using var b = TestData.Tensor(backend, B, DimsB);
            using var gradOutput = TestData.Tensor(backend, weights, DimsOutput);
            using var gradA = TestData.Tensor(backend, initialA, DimsA);
            using var gradB = TestData.Tensor(backend, initialB, DimsB);
            using var gradBias = Bias is null ? null : TestData.Tensor(backend, initialBias, _n);
            backend.MatMulBackward(gradA, gradB, gradBias, gradOutput, a, b, _transposeA, _transposeB, alpha);

            double[] expectedA, expectedB, expectedBias;
            if (finiteDifferences)
            {
                expectedA = Numerics.Gradient(x => Numerics.Dot(weights, Forward(x, B, Bias, alpha)), A);
                expectedB = Numerics.Gradient(x => Numerics.Dot(weights, Forward(A, x, Bias, alpha)), B);
                expectedBias = Bias is null ? [] : Numerics.Gradient(x => Numerics.Dot(weights, Forward(A, B, x, alpha)), Bias);
            }
            else
                (expectedA, expectedB, expectedBias) = AnalyticGradients(weights, alpha);
            AssertAccumulated(expectedA, initialA, TestData.Read(backend, gradA), "gradA");
            AssertAccumulated(expectedB, initialB, TestData.Read(backend, gradB), "gradB");
            if (gradBias is not null) AssertAccumulated(expectedBias, initialBias, TestData.Read(backend, gradBias), "gradBias");
        }

        private void AssertAccumulated(double[] gradient, double[] initial, double[] actual, string what)
        {
            // The op adds to what was there: actual - initial is its contribution.
            var added = new double[actual.Length];
            for (int i = 0; i < added.Length; i++) added[i] = actual[i] - (float)initial[i];
            Numerics.AssertClose(gradient, added, relative: 1e-5, absolute: 1e-5, what: Describe(what));
        }

        private double[] Forward(double[] a, double[] b, double[]? bias, double alpha)
        {
            var output = new double[(long)_batch * _m * _n];
            for (int i = 0; i < _batch; i++)
                for (int r = 0; r < _m; r++)
                    for (int c = 0; c < _n; c++)
                    {
                        double sum = 0;
                        for (int p = 0; p < _k; p++) sum += a[IndexA(i, r, p)] * b[IndexB(i, p, c)];
                        output[((long)i * _m + r) * _n + c] = alpha * sum + (bias?[c] ?? 0);
                    }
            return output;
        }

        /// <summary>d/d op(a) = alpha * G op(b)^T, d/d op(b) = alpha * op(a)^T G, d/d bias = column sums of G; shared operands sum over the batch.</summary>
        private (double[] A, double[] B, double[] Bias) AnalyticGradients(double[] g, double alpha)
        {
            var gradA = new double[A.Length];
            var gradB = new double[B.Length];
            var gradBias = new double[_n];
            for (int i = 0; i < _batch; i++)
                for (int r = 0; r < _m; r++)
                    for (int c = 0; c < _n; c++)
                    {
                        double gi = g[((long)i * _m + r) * _n + c];
                        gradBias[c] += gi;
                        for (int p = 0; p < _k; p++)
                        {
                            gradA[IndexA(i, r, p)] += alpha * gi * B[IndexB(i, p, c)];
                            gradB[IndexB(i, p, c)] += alpha * gi * A[IndexA(i, r, p)];
                        }
                    }
            return (gradA, gradB, gradBias);
        }

        /// <summary>Where op(a)_i[r, p] is stored.</summary>
        private int IndexA(int i, int r, int p) => (_batchedA ? i * _m * _k : 0) + (_transposeA ? p * _m + r : r * _k + p);

        /// <summary>Where op(b)_i[p, c] is stored.</summary>
        private int IndexB(int i, int p, int c) => (_batchedB ? i * _k * _n : 0) + (_transposeB ? c * _k + p : p * _n + c);

        private string Describe(string what) =>
            $"{what} of a {TensorShape.Format(DimsA)} (transposeA {_transposeA}) * b {TensorShape.Format(DimsB)} (transposeB {_transposeB}), bias {Bias is not null}";

        private int[] Dims(bool batched, int[] matrix) => batched ? [_batch, .. matrix] : matrix;

        private static long Count(int[] dims) => dims.Aggregate(1L, (x, d) => x * d);
    }
}
