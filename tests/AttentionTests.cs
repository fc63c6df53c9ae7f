using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>
/// Multi-head attention with E-SPA bias/rescale and the Value-SkipInit mix, against a float64 loop reference.
/// </summary>
/// <remarks>
/// Tolerances: every output is a chain of at most four float32 reductions (Q K^T over headDim, the softmax sum and
/// P V over keys; in backward also G V^T, the row sum of dM P and dS K / dS^T Q). Each reduction of n terms is
/// off by at most ~n u (u = 2^-24) relative to the sum of the magnitudes of its terms, and those magnitudes are of
/// the order of the largest result, so we allow <c>16 (headDim + Tq + Tk) u</c> relative to the largest expected
/// magnitude (see <see cref="Tolerance"/>): four chained reductions, a factor 4 for terms larger than the result.
/// </remarks>
public sealed class AttentionTests
{
    private const double UnitRoundoff = 1.0 / (1 << 24);

    private static double Tolerance(AttentionCase c) => 16 * (c.HeadDim + c.QueryTokens + c.KeyTokens) * UnitRoundoff;

    /// <summary>The case's tensors on a backend, and the inputs rounded to float32 so the reference sees the same values.</summary>
    private sealed class Problem : IDisposable
    {
        public Problem(Backend backend, AttentionCase c, int seed)
        {
            Case = c;
            int ch = c.Channels;
            QueryValues = TestData.RoundToSingle(TestData.Normal(seed, c.Batch * c.QueryTokens * ch));
            KeyValues = TestData.RoundToSingle(TestData.Normal(seed + 1, c.Batch * c.KeyTokens * ch));
            ValueValues = TestData.RoundToSingle(TestData.Normal(seed + 2, c.Batch * c.KeyTokens * ch));
            Query = TestData.Tensor(backend, QueryValues, c.Batch, c.QueryTokens, ch);
            Key = TestData.Tensor(backend, KeyValues, c.Batch, c.KeyTokens, ch);
            Value = TestData.Tensor(backend, ValueValues, c.Batch, c.KeyTokens, ch);
            Output = backend.Allocate(c.Batch, c.QueryTokens, ch);
            Probabilities = backend.Allocate(c.Batch, c.Heads, c.QueryTokens, c.KeyTokens);
            Options = new AttentionOptions
            {
                Heads = c.Heads,
                Causal = c.Causal,
                Scale = double.IsNaN(c.Scale) ? null : (float)c.Scale,
                Bias = c.Bias is null ? null : TestData.Tensor(backend, c.Bias, c.QueryTokens, c.KeyTokens),
                Rescale = c.Rescale is null ? null : TestData.Tensor(backend, c.Rescale, c.QueryTokens),
                MixAlpha = c.MixAlpha is null ? null : TestData.Tensor(backend, c.MixAlpha, c.Heads),
                MixBeta = c.MixBeta is null ? null : TestData.Tensor(backend, c.MixBeta, c.Heads),
            };
        }

        public AttentionCase Case { get; }
        public double[] QueryValues { get; }
        public double[] KeyValues { get; }
        public double[] ValueValues { get; }
        public Tensor Query { get; }
        public Tensor Key { get; }
        public Tensor Value { get; }
        public Tensor Output { get; }
        public Tensor Probabilities { get; }
        public AttentionOptions Options { get; }

        public void Dispose()
        {
            foreach (var t in new[] { Query, Key, Value, Output, Probabilities, Options.Bias, Options.Rescale, Options.MixAlpha, Options.MixBeta })
                t?.Dispose();
        }
    }

    /// <summary>A case with every option drawn from <paramref name="random"/>: E-SPA-like bias (-inf above the
    /// diagonal, plus a fully masked row when not causal), rescale, mix.</summary>
    private static AttentionCase WithOptions(AttentionCase c, Random random, bool bias, bool rescale, bool mix)
    {
        double[] Draw(int n, double lo, double hi) => Enumerable.Range(0, n).Select(_ => (double)(float)(lo + (hi - lo) * random.NextDouble())).ToArray();
        double[]? biasValues = null;
        if (bias)
        {
            biasValues = Draw(c.QueryTokens * c.KeyTokens, -2, 1);
            for (int i = 0; i < c.QueryTokens; i++)
                for (int j = i + 1; j < c.KeyTokens; j++)
                    if (c.Causal || j % 2 == 0) biasValues[i * c.KeyTokens + j] = double.NegativeInfinity;
            // Without the causal mask a row of all -inf bias must give P = 0 (pick the middle row when there are several).
            if (!c.Causal && c.QueryTokens > 1)
                Array.Fill(biasValues, double.NegativeInfinity, c.QueryTokens / 2 * c.KeyTokens, c.KeyTokens);
        }
        return c with
        {
            Bias = biasValues,
            Rescale = rescale ? Draw(c.QueryTokens, 0.5, 2.5) : null,
            MixAlpha = mix ? Draw(c.Heads, 0.2, 1.2) : null,
            MixBeta = mix ? Draw(c.Heads, -0.8, 1.2) : null,
        };
    }

    private static readonly Gen<(AttentionCase Case, int Seed)> Cases =
        from batch in Gen.Int[0, 2]
        from tq in Gen.OneOf(1, 2, 5, 7, 13)
        from tkChoice in Gen.OneOf(1, 2, 5, 7, 13)
        from heads in Gen.OneOf(1, 2, 3)
        from headDim in Gen.OneOf(1, 3, 8)
        from flags in Gen.Int[0, 15]
        from seed in Gen.Int[0, 1000]
        let causal = (flags & 1) != 0
        let mix = (flags & 8) != 0
        let tk = causal || mix ? tq : tkChoice
        select (WithOptions(new AttentionCase(batch, tq, tk, heads, headDim, causal), new Random(seed), (flags & 2) != 0, (flags & 4) != 0, mix), seed);

    [Fact]
    public void ForwardMatchesFloat64ReferenceOverShapesAndOptions()
    {
        using var backend = new CpuBackend();
        Cases.Sample((c, seed) =>
        {
            using var problem = new Problem(backend, c, seed);
            backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
            var expectedP = new double[c.Batch * c.Heads * c.QueryTokens * c.KeyTokens];
            var expected = AttentionReference.Forward(c, problem.QueryValues, problem.KeyValues, problem.ValueValues, probabilities: expectedP);
            Numerics.AssertClose(expectedP, TestData.Read(backend, problem.Probabilities), Tolerance(c), what: $"P ({c})");
            // alpha V + beta P V may cancel: measure the error against the size of the terms, not of their sum.
            double terms = problem.ValueValues.Append(0).Max(Math.Abs) * (c.Rescale?.Max() ?? 1)
                * (c.MixAlpha is null ? 1 : c.MixAlpha.Zip(c.MixBeta!, (a, b) => Math.Abs(a) + Math.Abs(b)).Max());
            Numerics.AssertClose(expected, TestData.Read(backend, problem.Output), Tolerance(c), Tolerance(c) * terms, what: $"output ({c})");
        }, iter: 300, threads: 1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LongSequencesCrossTheCausalBlocks(bool mix)
    {
        // 38 query rows span two 32-row blocks of the causal kernel, the second one partial.
        using var backend = new CpuBackend();
        var c = WithOptions(new AttentionCase(1, 38, 38, 2, 3, Causal: true), new Random(7), bias: true, rescale: true, mix);
        using var problem = new Problem(backend, c, 11);
        backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
        var expected = AttentionReference.Forward(c, problem.QueryValues, problem.KeyValues, problem.ValueValues);
        Numerics.AssertClose(expected, TestData.Read(backend, problem.Output), Tolerance(c), what: "output");
        AssertBackwardMatchesFiniteDifferences(backend, problem, seed: 12);
    }

    [Fact]
    public void FullyMaskedRowAndKeylessQueriesGiveZeroProbabilities()
    {
        using var backend = new CpuBackend();
        // Cross-attention to no keys at all: every row is empty, so P is [.., 3, 0] and the output is 0.
        using (var none = new Problem(backend, new AttentionCase(2, 3, 0, 2, 4, Causal: false), 1))
        {
            backend.Upload<float>(none.Output, Enumerable.Repeat(float.NaN, (int)none.Output.ElementCount).ToArray());
            backend.Attention(none.Output, none.Probabilities, none.Query, none.Key, none.Value, none.Options);
            Assert.All(TestData.Read(backend, none.Output), v => Assert.Equal(0.0, v));
        }
        // A bias row of all -inf: P = 0 there and the output row is rescale * alpha * V (the identity part of the mix).
        var c = new AttentionCase(1, 4, 4, 1, 3, Causal: false)
        {
            Bias = Enumerable.Range(0, 16).Select(i => i / 4 == 2 ? double.NegativeInfinity : 0.0).ToArray(),
            Rescale = [1, 1, 2, 1],
            MixAlpha = [0.5],
            MixBeta = [1],
        };
        using var problem = new Problem(backend, c, 2);
        backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
        var p = TestData.Read(backend, problem.Probabilities);
        Assert.All(p.Skip(8).Take(4), v => Assert.Equal(0.0, v));
        var output = TestData.Read(backend, problem.Output);
        for (int e = 0; e < 3; e++) Assert.Equal(2 * 0.5 * problem.ValueValues[2 * 3 + e], output[2 * 3 + e], 6);
    }

    [Fact]
    public void EspaBiasAndRescaleReproduceTheAttentionMatrixA1()
    {
        // spa-theory.md 2.4: A_1 for T = 6, L = 4, gamma_L = 0.005 (lower triangle, rounded to 5 digits in the doc).
        var a1 = SpaCheckValues.A1Rows;
        var d1 = SpaCheckValues.D1;
        const int t = 6;
        // B = log(row-normalised A_1), -inf above the diagonal; D = row sums (spa-theory 2.1).
        var bias = new double[t * t];
        var rescale = new double[t];
        for (int i = 0; i < t; i++)
        {
            rescale[i] = a1[i].Sum();
            Assert.Equal(d1[i], rescale[i], 4); // the doc's D_1 is the row sums of its (rounded) A_1
            for (int j = 0; j < t; j++) bias[i * t + j] = j <= i ? Math.Log(a1[i][j] / rescale[i]) : double.NegativeInfinity;
        }
        using var backend = new CpuBackend();
        // Q = 0 (zero-initialised queries) so softmax(Q K^T + B) = softmax(B); V rows are unit vectors, so
        // output row i is row i of the attention matrix D softmax(B).
        using var query = backend.Allocate(1, t, t);
        using var key = TestData.Tensor(backend, TestData.Normal(3, t * t), 1, t, t);
        using var value = TestData.Tensor(backend, Enumerable.Range(0, t * t).Select(i => i / t == i % t ? 1.0 : 0.0).ToArray(), 1, t, t);
        using var output = backend.Allocate(1, t, t);
        using var probabilities = backend.Allocate(1, 1, t, t);
        using var biasTensor = TestData.Tensor(backend, bias, t, t);
        using var rescaleTensor = TestData.Tensor(backend, rescale, t);
        backend.Attention(output, probabilities, query, key, value, new AttentionOptions { Heads = 1, Causal = true, Bias = biasTensor, Rescale = rescaleTensor });
        var attention = TestData.Read(backend, output);
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++)
                Assert.True(Math.Abs(attention[i * t + j] - (j <= i ? a1[i][j] : 0)) <= 1e-5, $"A[{i},{j}] = {attention[i * t + j]}, expected {(j <= i ? a1[i][j] : 0)}");
    }

    [Fact]
    public void ValueSkipInitIsTheIdentityAndStillTrainsBeta()
    {
        using var backend = new CpuBackend();
        var c = new AttentionCase(2, 7, 7, 3, 4, Causal: true) { MixAlpha = [1, 1, 1], MixBeta = [0, 0, 0] };
        using var problem = new Problem(backend, c, 5);
        backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
        Assert.Equal(problem.ValueValues, TestData.Read(backend, problem.Output));

        var weights = TestData.RoundToSingle(TestData.Normal(6, problem.Output.ElementCount));
        using var gradOutput = TestData.Tensor(backend, weights, c.Batch, c.QueryTokens, c.Channels);
        using var gradBeta = backend.Allocate(c.Heads);
        backend.AttentionBackward(null, null, null, null, gradBeta, gradOutput, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
        // d loss / d beta[h] = sum over b, i, j of P[i, j] (gradOutput[i] . V[j]) for that head.
        var p = TestData.Read(backend, problem.Probabilities);
        var expected = new double[c.Heads];
        for (int b = 0; b < c.Batch; b++)
            for (int h = 0; h < c.Heads; h++)
                for (int i = 0; i < c.QueryTokens; i++)
                    for (int j = 0; j < c.KeyTokens; j++)
                        for (int e = 0; e < c.HeadDim; e++)
                            expected[h] += p[((b * c.Heads + h) * c.QueryTokens + i) * c.KeyTokens + j]
                                * weights[(b * c.QueryTokens + i) * c.Channels + h * c.HeadDim + e] * problem.ValueValues[(b * c.KeyTokens + j) * c.Channels + h * c.HeadDim + e];
        var actual = TestData.Read(backend, gradBeta);
        Assert.All(actual, v => Assert.NotEqual(0.0, v));
        Numerics.AssertClose(expected, actual, Tolerance(c), what: "gradBeta");
    }

    public static TheoryData<bool, bool, bool, bool> BackwardOptions()
    {
        var data = new TheoryData<bool, bool, bool, bool>();
        foreach (bool causal in new[] { false, true })
            foreach (bool bias in new[] { false, true })
                foreach (bool mix in new[] { false, true })
                    data.Add(causal, bias, !bias, mix);
        data.Add(true, true, true, true);
        return data;
    }

    [Theory]
    [MemberData(nameof(BackwardOptions))]
    public void BackwardMatchesFiniteDifferences(bool causal, bool bias, bool rescale, bool mix)
    {
        using var backend = new CpuBackend();
        var c = WithOptions(new AttentionCase(2, 5, 5, 2, 3, causal), new Random(3), bias, rescale, mix);
        using var problem = new Problem(backend, c, 21);
        backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
        AssertBackwardMatchesFiniteDifferences(backend, problem, seed: 22);
    }

    [Fact]
    public void CrossAttentionBackwardMatchesFiniteDifferences()
    {
        using var backend = new CpuBackend();
        var c = WithOptions(new AttentionCase(2, 3, 7, 3, 2, Causal: false), new Random(4), bias: true, rescale: true, mix: false);
        using var problem = new Problem(backend, c, 31);
        backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
        AssertBackwardMatchesFiniteDifferences(backend, problem, seed: 32);
    }

    /// <summary>
    /// Loss = sum(w * output) with random w: the backward with gradOutput = w must equal the central finite
    /// differences of the float64 reference, added onto random pre-filled gradients (backward accumulates).
    /// </summary>
    private static void AssertBackwardMatchesFiniteDifferences(CpuBackend backend, Problem problem, int seed)
    {
        var c = problem.Case;
        int nq = problem.QueryValues.Length, nk = problem.KeyValues.Length, nh = c.MixAlpha is null ? 0 : c.Heads;
        var weights = TestData.RoundToSingle(TestData.Normal(seed, problem.Output.ElementCount));
        double Loss(double[] x) => Numerics.Dot(weights, AttentionReference.Forward(c, x[..nq], x[nq..(nq + nk)], x[(nq + nk)..(nq + 2 * nk)],
            nh == 0 ? null : x[(nq + 2 * nk)..(nq + 2 * nk + nh)], nh == 0 ? null : x[(nq + 2 * nk + nh)..]));
        double[] point = [.. problem.QueryValues, .. problem.KeyValues, .. problem.ValueValues, .. c.MixAlpha ?? [], .. c.MixBeta ?? []];
        var fd = Numerics.Gradient(Loss, point);

        var prefill = TestData.RoundToSingle(TestData.Normal(seed + 1, point.Length));
        Tensor Prefilled(int start, params int[] dims) => TestData.Tensor(backend, prefill[start..(start + dims.Aggregate(1, (a, b) => a * b))], dims);
        using var gradOutput = TestData.Tensor(backend, weights, c.Batch, c.QueryTokens, c.Channels);
        using var gradQuery = Prefilled(0, c.Batch, c.QueryTokens, c.Channels);
        using var gradKey = Prefilled(nq, c.Batch, c.KeyTokens, c.Channels);
        using var gradValue = Prefilled(nq + nk, c.Batch, c.KeyTokens, c.Channels);
        using var gradAlpha = nh == 0 ? null : Prefilled(nq + 2 * nk, c.Heads);
        using var gradBeta = nh == 0 ? null : Prefilled(nq + 2 * nk + nh, c.Heads);
        backend.AttentionBackward(gradQuery, gradKey, gradValue, gradAlpha, gradBeta, gradOutput, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);

        void Expect(string name, Tensor? gradient, int start)
        {
            if (gradient is null) return;
            int n = (int)gradient.ElementCount;
            var expected = Enumerable.Range(start, n).Select(i => prefill[i] + fd[i]).ToArray();
            Numerics.AssertClose(expected, TestData.Read(backend, gradient), Tolerance(c), what: $"{name} ({c})");
        }
        Expect("gradQuery", gradQuery, 0);
        Expect("gradKey", gradKey, nq);
        Expect("gradValue", gradValue, nq + nk);
        Expect("gradMixAlpha", gradAlpha, nq + 2 * nk);
        Expect("gradMixBeta", gradBeta, nq + 2 * nk + nh);
    }

    [Fact]
    public void BackwardIsBitIdenticalAcrossRunsAndThreadCounts()
    {
        var c = WithOptions(new AttentionCase(3, 45, 45, 3, 8, Causal: true), new Random(9), bias: true, rescale: true, mix: true);
        int[][] Run(int threads)
        {
            using var backend = new CpuBackend(threads);
            using var problem = new Problem(backend, c, 41);
            backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
            using var gradOutput = TestData.Tensor(backend, TestData.Normal(42, problem.Output.ElementCount), c.Batch, c.QueryTokens, c.Channels);
            Tensor[] grads = [backend.Allocate(c.Batch, c.QueryTokens, c.Channels), backend.Allocate(c.Batch, c.KeyTokens, c.Channels),
                backend.Allocate(c.Batch, c.KeyTokens, c.Channels), backend.Allocate(c.Heads), backend.Allocate(c.Heads)];
            var runs = new List<int[]>();
            for (int run = 0; run < 2; run++)
            {
                foreach (var g in grads) backend.Zero(g);
                backend.AttentionBackward(grads[0], grads[1], grads[2], grads[3], grads[4], gradOutput, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
                // Compare bit patterns: float equality would let -0 match 0.
                runs.Add([.. grads.SelectMany(g => g.AsSpan<float>().ToArray()).Select(BitConverter.SingleToInt32Bits)]);
            }
            Assert.Equal(runs[0], runs[1]);
            foreach (var g in grads) g.Dispose();
            return [.. runs];
        }
        Assert.Equal(Run(2)[0], Run(1)[0]);
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        var c = WithOptions(new AttentionCase(2, 40, 40, 2, 8, Causal: true), new Random(1), bias: true, rescale: true, mix: true);
        foreach (int threads in new[] { 1, 2 })
        {
            using var backend = new CpuBackend(threads);
            using var problem = new Problem(backend, c, 51);
            using var gradOutput = TestData.Tensor(backend, TestData.Normal(52, problem.Output.ElementCount), c.Batch, c.QueryTokens, c.Channels);
            using var gradQuery = backend.Allocate(c.Batch, c.QueryTokens, c.Channels);
            using var gradKey = backend.Allocate(c.Batch, c.KeyTokens, c.Channels);
            using var gradValue = backend.Allocate(c.Batch, c.KeyTokens, c.Channels);
            using var gradAlpha = backend.Allocate(c.Heads);
            using var gradBeta = backend.Allocate(c.Heads);
            void Step()
            {
                backend.Attention(problem.Output, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
                backend.AttentionBackward(gradQuery, gradKey, gradValue, gradAlpha, gradBeta, gradOutput, problem.Probabilities, problem.Query, problem.Key, problem.Value, problem.Options);
            }
            Allocations.AssertWarmCallAllocatesNothing(Step);
        }
    }

    [Fact]
    public void WrongArgumentsNameTheOperandAndShapes()
    {
        using var backend = new CpuBackend();
        using var q = backend.Allocate(2, 5, 8);
        using var k = backend.Allocate(2, 7, 8);
        using var v = backend.Allocate(2, 7, 8);
        using var output = backend.Allocate(2, 5, 8);
        using var p = backend.Allocate(2, 2, 5, 7);
        using var kWide = backend.Allocate(2, 7, 6);
        using var bias = backend.Allocate(7, 5);
        using var heads = backend.Allocate(2);
        using var pSelf = backend.Allocate(2, 2, 5, 5);

        void Throws(string operand, string[] fragments, Action call)
        {
            var ex = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Equal(operand, ex.ParamName);
            foreach (var fragment in fragments) Assert.Contains(fragment, ex.Message);
        }
        var two = new AttentionOptions { Heads = 2 };
        Throws("key", ["[2, 7, 6]", "[2, 7, 8]", "query [2, 5, 8]"], () => backend.Attention(output, p, q, kWide, kWide, two));
        Throws("value", ["[2, 7, 6]", "[2, 7, 8]"], () => backend.Attention(output, p, q, k, kWide, two));
        Throws("options.Bias", ["[7, 5]", "[5, 7]"], () => backend.Attention(output, p, q, k, v, two with { Bias = bias }));
        Throws("query", ["[2, 5, 8]", "3 heads"], () => backend.Attention(output, p, q, k, v, new AttentionOptions { Heads = 3 }));
        Throws("options.Causal", ["[2, 5, 8]", "[2, 7, 8]"], () => backend.Attention(output, p, q, k, v, two with { Causal = true }));
        Throws("options.MixBeta", ["MixAlpha"], () => backend.Attention(output, pSelf, q, q, q, two with { MixBeta = heads }));
        Throws("probabilities", ["[2, 2, 5, 7]", "[2, 2, 5, 5]"], () => backend.Attention(output, p, q, q, q, two));
        Throws("options.Scale", ["NaN"], () => backend.Attention(output, p, q, k, v, two with { Scale = float.NaN }));
        Throws("output", ["[2, 5, 8]", "query"], () => backend.Attention(q, p, q, k, v, two));
        Throws("gradMixAlpha", ["[2]", "no mix"], () => backend.AttentionBackward(null, null, null, heads, null, output, p, q, k, v, two));
        Throws("gradKey", ["[2, 7, 6]", "[2, 7, 8]"], () => backend.AttentionBackward(null, kWide, null, null, null, output, p, q, k, v, two));
    }
}
