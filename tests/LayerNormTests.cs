using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>
/// The residual combine <c>s = lambda x + beta branch</c> fused with layer norm, and the plain residual, against a
/// float64 loop reference and finite differences.
/// </summary>
/// <remarks>
/// Tolerances: the kernel sums a row of n channels in 16 SIMD lanes (n / 16 sequential adds per lane, then 16
/// lanes), so each row reduction is off by about (n / 16 + 16) u (u = 2^-24) relative to the sum of the magnitudes;
/// the forward chains three (mean, variance, normalise), the backward three more, and gradWeight/gradBias add a sum
/// over rows. We allow <c>16 (n / 16 + rows + 16) u</c> relative to the largest expected magnitude (see <see cref="Tolerance"/>),
/// and for the forward's normalised output an absolute term scaled by the row's conditioning <c>rstd max|s|</c>.
/// </remarks>
public sealed class LayerNormTests
{
    private const double UnitRoundoff = 1.0 / (1 << 24);
    private const double Epsilon = 1e-5;

    private static double Tolerance(int rows, int channels) => 16 * (channels / 16 + rows + 16) * UnitRoundoff;

    /// <summary>One problem; Affine: 0 none, 1 weight, 2 bias, 3 both.</summary>
    internal sealed record Case(int[] Shape, bool Branch, int Affine, double Lambda, double Beta)
    {
        public int Channels => Shape[^1];
        public int Rows => Shape[..^1].Aggregate(1, (a, b) => a * b);
        public int Count => Rows * Channels;
        public bool HasWeight => (Affine & 1) != 0;
        public bool HasBias => (Affine & 2) != 0;
        public override string ToString() => $"shape [{string.Join(", ", Shape)}], branch {Branch}, affine {Affine}, lambda {Lambda}, beta {Beta}";
    }

    /// <summary>Float64 forward: s (the normalised input), the norm output, mean and rstd per row.</summary>
    private static (double[] S, double[] Y, double[] Mean, double[] Rstd) Reference(Case c, double[] x, double[]? branch, double[]? weight, double[]? bias)
    {
        int rows = c.Rows, n = c.Channels;
        var s = new double[c.Count];
        var y = new double[c.Count];
        var mean = new double[rows];
        var rstd = new double[rows];
        for (int i = 0; i < s.Length; i++) s[i] = branch is null ? x[i] : c.Lambda * x[i] + c.Beta * branch[i];
        for (int r = 0; r < rows; r++)
        {
            double m = 0, v = 0;
            for (int j = 0; j < n; j++) m += s[r * n + j];
            m /= n;
            for (int j = 0; j < n; j++) v += (s[r * n + j] - m) * (s[r * n + j] - m);
            mean[r] = m;
            rstd[r] = 1 / Math.Sqrt(v / n + Epsilon);
            for (int j = 0; j < n; j++)
                y[r * n + j] = (s[r * n + j] - m) * rstd[r] * (weight?[j] ?? 1) + (bias?[j] ?? 0);
        }
        return (s, y, mean, rstd);
    }

    /// <summary>The case's inputs (float32-representable) and tensors.</summary>
    private sealed class Problem : IDisposable
    {
        public Problem(Backend backend, Case c, int seed)
        {
            Case = c;
            // A nonzero mean per row exercises the two-pass variance.
            X = TestData.RoundToSingle(TestData.Normal(seed, c.Count).Select((v, i) => v + (i / c.Channels) % 3).ToArray());
            BranchValues = c.Branch ? TestData.RoundToSingle(TestData.Normal(seed + 1, c.Count)) : null;
            WeightValues = c.HasWeight ? TestData.RoundToSingle(TestData.Normal(seed + 2, c.Channels, 0.5).Select(v => v + 1).ToArray()) : null;
            BiasValues = c.HasBias ? TestData.RoundToSingle(TestData.Normal(seed + 3, c.Channels, 0.5)) : null;
            XTensor = TestData.Tensor(backend, X, c.Shape);
            Branch = BranchValues is null ? null : TestData.Tensor(backend, BranchValues, c.Shape);
            Weight = WeightValues is null ? null : TestData.Tensor(backend, WeightValues, c.Channels);
            Bias = BiasValues is null ? null : TestData.Tensor(backend, BiasValues, c.Channels);
            Residual = c.Branch ? backend.Allocate(c.Shape) : null;
            Output = backend.Allocate(c.Shape);
            Mean = backend.Allocate(c.Rows);
            Rstd = backend.Allocate(c.Rows);
        }

        public Case Case { get; }
        public double[] X { get; }
        public double[]? BranchValues { get; }
        public double[]? WeightValues { get; }
        public double[]? BiasValues { get; }
        public Tensor XTensor { get; }
        public Tensor? Branch { get; }
        public Tensor? Weight { get; }
        public Tensor? Bias { get; }
        public Tensor? Residual { get; }
        public Tensor Output { get; }
        public Tensor Mean { get; }
        public Tensor Rstd { get; }

        public void Forward(Backend backend) =>
            backend.ResidualLayerNorm(Residual, Output, Mean, Rstd, XTensor, Branch, (float)Case.Lambda, (float)Case.Beta, Weight, Bias, (float)Epsilon);

        public void Dispose()
        {
            foreach (var t in new[] { XTensor, Branch, Weight, Bias, Residual, Output, Mean, Rstd }) t?.Dispose();
        }
    }

    private static readonly Gen<(Case Case, int Seed)> Cases =
        from rows in Gen.OneOf(0, 1, 2, 5, 200)
        from channels in Gen.OneOf(1, 2, 7, 13, 16, 31, 1031)
        from branch in Gen.Bool
        from affine in Gen.Int[0, 3]
        from lambda in Gen.Int[-15, 15]
        from beta in Gen.Int[-15, 15]
        from seed in Gen.Int[0, 1000]
        select (new Case([rows, channels], branch, affine, (float)(lambda / 10.0), (float)(beta / 10.0)), seed);

    [Fact]
    public void ForwardMatchesFloat64Reference()
    {
        using var backend = new CpuBackend();
        Cases.Sample((c, seed) =>
        {
            using var problem = new Problem(backend, c, seed);
            problem.Forward(backend);
            var (s, y, mean, rstd) = Reference(c, problem.X, problem.BranchValues, problem.WeightValues, problem.BiasValues);
            double tolerance = Tolerance(1, c.Channels);
            // s = lam x + beta f rounds each term, so its float32 error scales with |lam x| + |beta f|, which can be far
            // above |s| when the two cancel; every quantity computed from s inherits that absolute error.
            var terms = Enumerable.Range(0, c.Count).Select(i => problem.BranchValues is null
                ? Math.Abs(problem.X[i]) : Math.Abs(c.Lambda * problem.X[i]) + Math.Abs(c.Beta * problem.BranchValues[i])).ToArray();
            if (problem.Residual is not null) Numerics.AssertClose(s, TestData.Read(backend, problem.Residual), tolerance, tolerance * terms.Append(0).Max(), what: $"s ({c})");
            // normOutput = (s - mean) rstd w amplifies that error (and the mean's, ~u |s|) by rstd |w|: a row whose
            // spread is small next to its terms (rstd |terms| >> 1) is ill-conditioned, so scale the absolute part.
            double conditioning = Enumerable.Range(0, c.Rows).Select(r => terms.Skip(r * c.Channels).Take(c.Channels).Max() * rstd[r]).DefaultIfEmpty(0).Max();
            double gain = Math.Max(1, problem.WeightValues?.Max(Math.Abs) ?? 1);
            Numerics.AssertClose(y, TestData.Read(backend, problem.Output), tolerance, tolerance * conditioning * gain, what: $"normOutput ({c})");
            // The mean may cancel to far below the values it averages: its error scales with the largest term.
            Numerics.AssertClose(mean, TestData.Read(backend, problem.Mean), tolerance, tolerance * terms.Append(0).Max(), what: $"mean ({c})");
            // rstd = 1 / sqrt(var): s's absolute error u |terms| moves var by ~u |terms| |s - mean|, a relative error of
            // about u |terms| rstd in rstd: the same conditioning (seen: 2 channels, rstd 116, error 1.1x the plain bound).
            Numerics.AssertClose(rstd, TestData.Read(backend, problem.Rstd), tolerance * Math.Max(1, conditioning), what: $"rstd ({c})");
        }, iter: 200, threads: 1);
    }

    [Theory]
    [InlineData(new[] { 3, 7 }, true, 3, true)]
    [InlineData(new[] { 2, 2, 13 }, true, 0, false)]
    [InlineData(new[] { 4, 1 }, true, 3, true)]
    [InlineData(new[] { 2, 13 }, false, 3, false)]
    [InlineData(new[] { 5, 5 }, false, 0, false)]
    [InlineData(new[] { 3, 17 }, true, 1, false)]
    [InlineData(new[] { 3, 17 }, true, 2, true)]
    [InlineData(new[] { 1, 1031 }, true, 3, true)]
    public void BackwardMatchesFiniteDifferences(int[] shape, bool branch, int affine, bool gradResidual)
    {
        using var backend = new CpuBackend();
        var c = new Case(shape, branch, affine, 0.6, -0.8);
        using var problem = new Problem(backend, c, 17);
        problem.Forward(backend);
        int n = c.Count, channels = c.Channels;
        var wy = TestData.RoundToSingle(TestData.Normal(18, n));
        var ws = gradResidual ? TestData.RoundToSingle(TestData.Normal(19, n)) : null;
        // Loss = sum(wy * normOutput) + sum(ws * s): the backward gets gradNormOutput = wy, gradResidualOutput = ws.
        double Loss(double[] p)
        {
            var (s, y, _, _) = Reference(c, p[..n], branch ? p[n..(2 * n)] : null, c.HasWeight ? p[(2 * n)..(2 * n + channels)] : null,
                c.HasBias ? p[(2 * n + channels)..] : null);
            return Numerics.Dot(wy, y) + (ws is null ? 0 : Numerics.Dot(ws, s));
        }
        double[] point = [.. problem.X, .. problem.BranchValues ?? new double[n], .. problem.WeightValues ?? new double[channels], .. problem.BiasValues ?? new double[channels]];
        var fd = Numerics.Gradient(Loss, point);

        var prefill = TestData.RoundToSingle(TestData.Normal(20, point.Length));
        Tensor Prefilled(int start, params int[] dims) => TestData.Tensor(backend, prefill[start..(start + dims.Aggregate(1, (a, b) => a * b))], dims);
        using var gradNorm = TestData.Tensor(backend, wy, shape);
        using var gradS = ws is null ? null : TestData.Tensor(backend, ws, shape);
        using var gradX = Prefilled(0, shape);
        using var gradBranch = branch ? Prefilled(n, shape) : null;
        using var gradWeight = Prefilled(2 * n, channels);
        using var gradBias = Prefilled(2 * n + channels, channels);
        backend.ResidualLayerNormBackward(gradX, gradBranch, gradWeight, gradBias, gradNorm, gradS, problem.Residual ?? problem.XTensor,
            problem.Mean, problem.Rstd, problem.Weight, (float)c.Lambda, (float)c.Beta, branch);

        double tolerance = Tolerance(c.Rows, channels);
        void Expect(string name, Tensor? gradient, int start)
        {
            if (gradient is null) return;
            var expected = Enumerable.Range(start, (int)gradient.ElementCount).Select(i => prefill[i] + fd[i]).ToArray();
            Numerics.AssertClose(expected, TestData.Read(backend, gradient), tolerance, what: $"{name} ({c})");
        }
        Expect("gradX", gradX, 0);
        Expect("gradBranch", gradBranch, n);
        // Without an affine weight/bias in the forward, their gradients are still sum(dy * xhat) and sum(dy).
        if (c.HasWeight) Expect("gradWeight", gradWeight, 2 * n);
        if (c.HasBias) Expect("gradBias", gradBias, 2 * n + channels);
    }

    [Fact]
    public void WeightAndBiasGradientsReduceOverManyChunksExactlyOnce()
    {
        // 300 rows split into 64 chunks of 4 or 5 rows, summed chunk by chunk: finite differences over weight and bias only.
        using var backend = new CpuBackend();
        var c = new Case([300, 40], true, 3, 0.8, 0.6);
        using var problem = new Problem(backend, c, 23);
        problem.Forward(backend);
        var wy = TestData.RoundToSingle(TestData.Normal(24, c.Count));
        double Loss(double[] p) => Numerics.Dot(wy, Reference(c, problem.X, problem.BranchValues, p[..c.Channels], p[c.Channels..]).Y);
        var fd = Numerics.Gradient(Loss, [.. problem.WeightValues!, .. problem.BiasValues!]);
        using var gradNorm = TestData.Tensor(backend, wy, c.Shape);
        using var gradWeight = backend.Allocate(c.Channels);
        using var gradBias = backend.Allocate(c.Channels);
        backend.ResidualLayerNormBackward(null, null, gradWeight, gradBias, gradNorm, null, problem.Residual!, problem.Mean, problem.Rstd, problem.Weight,
            (float)c.Lambda, (float)c.Beta, hasBranch: true);
        Numerics.AssertClose(fd[..c.Channels], TestData.Read(backend, gradWeight), Tolerance(c.Rows, c.Channels), what: "gradWeight");
        Numerics.AssertClose(fd[c.Channels..], TestData.Read(backend, gradBias), Tolerance(c.Rows, c.Channels), what: "gradBias");
    }

    [Fact]
    public void BackwardIsBitIdenticalAcrossRunsAndThreadCounts()
    {
        var c = new Case([333, 77], true, 3, 0.8, 0.6);
        int[] Run(int threads)
        {
            using var backend = new CpuBackend(threads);
            using var problem = new Problem(backend, c, 29);
            problem.Forward(backend);
            using var gradNorm = TestData.Tensor(backend, TestData.Normal(30, c.Count), c.Shape);
            using var gradS = TestData.Tensor(backend, TestData.Normal(31, c.Count), c.Shape);
            Tensor[] grads = [backend.Allocate(c.Shape), backend.Allocate(c.Shape), backend.Allocate(c.Channels), backend.Allocate(c.Channels)];
            var runs = new List<int[]>();
            for (int run = 0; run < 2; run++)
            {
                foreach (var g in grads) backend.Zero(g);
                backend.ResidualLayerNormBackward(grads[0], grads[1], grads[2], grads[3], gradNorm, gradS, problem.Residual!, problem.Mean, problem.Rstd,
                    problem.Weight, (float)c.Lambda, (float)c.Beta, hasBranch: true);
                // Compare bit patterns: float equality would let -0 match 0.
                runs.Add([.. grads.SelectMany(g => g.AsSpan<float>().ToArray()).Select(BitConverter.SingleToInt32Bits)]);
            }
            Assert.Equal(runs[0], runs[1]);
            foreach (var g in grads) g.Dispose();
            return runs[0];
        }
        Assert.Equal(Run(2), Run(1));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(70_001)]
    public void ResidualAndItsBackwardMatchTheFormula(int count)
    {
        // 70 001 elements cross the 65 536-element work items with a partial last one and a SIMD tail.
        using var backend = new CpuBackend();
        const float lambda = 0.6f, beta = -0.8f;
        var x = TestData.RoundToSingle(TestData.Normal(1, count));
        var branch = TestData.RoundToSingle(TestData.Normal(2, count));
        var gradOutput = TestData.RoundToSingle(TestData.Normal(3, count));
        var prefill = TestData.RoundToSingle(TestData.Normal(4, count));
        using var xt = TestData.Tensor(backend, x, count);
        using var bt = TestData.Tensor(backend, branch, count);
        using var output = backend.Allocate(count);
        backend.Residual(output, xt, bt, lambda, beta);
        // One rounding of a fused multiply-add after one exact product: within u of the float64 value.
        Numerics.AssertClose(x.Select((v, i) => lambda * v + beta * branch[i]).ToArray(), TestData.Read(backend, output), 2 * UnitRoundoff, 2 * UnitRoundoff, "output");

        using var go = TestData.Tensor(backend, gradOutput, count);
        using var gx = TestData.Tensor(backend, prefill, count);
        using var gb = TestData.Tensor(backend, prefill, count);
        backend.ResidualBackward(gx, gb, go, lambda, beta);
        Numerics.AssertClose(prefill.Select((p, i) => p + lambda * gradOutput[i]).ToArray(), TestData.Read(backend, gx), 2 * UnitRoundoff, 2 * UnitRoundoff, "gradX");
        Numerics.AssertClose(prefill.Select((p, i) => p + beta * gradOutput[i]).ToArray(), TestData.Read(backend, gb), 2 * UnitRoundoff, 2 * UnitRoundoff, "gradBranch");
    }

    [Fact]
    public void EmptyInputIsANoOp()
    {
        using var backend = new CpuBackend();
        var c = new Case([0, 8], true, 3, 0.6, 0.8);
        using var problem = new Problem(backend, c, 1);
        problem.Forward(backend);
        using var gradNorm = backend.Allocate(0, 8);
        using var gradWeight = TestData.Tensor(backend, [1, 2, 3, 4, 5, 6, 7, 8], 8);
        backend.ResidualLayerNormBackward(null, null, gradWeight, null, gradNorm, null, problem.Residual!, problem.Mean, problem.Rstd, problem.Weight, 0.6f, 0.8f, true);
        Assert.Equal([1.0, 2, 3, 4, 5, 6, 7, 8], TestData.Read(backend, gradWeight));
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        var c = new Case([130, 96], true, 3, 0.8, 0.6);
        foreach (int threads in new[] { 1, 2 })
        {
            using var backend = new CpuBackend(threads);
            using var problem = new Problem(backend, c, 3);
            using var gradNorm = TestData.Tensor(backend, TestData.Normal(4, c.Count), c.Shape);
            using var gradX = backend.Allocate(c.Shape);
            using var gradBranch = backend.Allocate(c.Shape);
            using var gradWeight = backend.Allocate(c.Channels);
            using var gradBias = backend.Allocate(c.Channels);
            void Step()
            {
                problem.Forward(backend);
                backend.ResidualLayerNormBackward(gradX, gradBranch, gradWeight, gradBias, gradNorm, gradNorm, problem.Residual!, problem.Mean, problem.Rstd,
                    problem.Weight, 0.8f, 0.6f, true);
                backend.Residual(problem.Output, problem.XTensor, problem.Branch!, 0.8f, 0.6f);
                backend.ResidualBackward(gradX, gradBranch, gradNorm, 0.8f, 0.6f);
            }
            Allocations.AssertWarmCallAllocatesNothing(Step);
        }
    }

    [Fact]
    public void WrongArgumentsNameTheOperandAndShapes()
    {
        using var backend = new CpuBackend();
        using var x = backend.Allocate(4, 6);
        using var branch = backend.Allocate(4, 6);
        using var s = backend.Allocate(4, 6);
        using var y = backend.Allocate(4, 6);
        using var mean = backend.Allocate(4);
        using var rstd = backend.Allocate(4);
        using var shortMean = backend.Allocate(3);
        using var weight = backend.Allocate(6);
        using var wrongWeight = backend.Allocate(5);
        using var wide = backend.Allocate(4, 7);

        void Throws(string operand, string[] fragments, Action call)
        {
            var ex = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Equal(operand, ex.ParamName);
            foreach (var fragment in fragments) Assert.Contains(fragment, ex.Message);
        }
        Throws("lambda", ["NaN"], () => backend.ResidualLayerNorm(s, y, mean, rstd, x, branch, float.NaN, 1, null, null));
        Throws("epsilon", ["0"], () => backend.ResidualLayerNorm(s, y, mean, rstd, x, branch, 1, 1, null, null, 0f));
        Throws("mean", ["[3]", "[4]", "x [4, 6]"], () => backend.ResidualLayerNorm(s, y, shortMean, rstd, x, branch, 1, 1, null, null));
        Throws("weight", ["[5]", "[6]", "x [4, 6]"], () => backend.ResidualLayerNorm(s, y, mean, rstd, x, branch, 1, 1, wrongWeight, null));
        Throws("branch", ["[4, 7]", "[4, 6]"], () => backend.ResidualLayerNorm(s, y, mean, rstd, x, wide, 1, 1, null, null));
        Throws("residualOutput", ["[4, 6]", "branch"], () => backend.ResidualLayerNorm(null, y, mean, rstd, x, branch, 1, 1, null, null));
        Throws("residualOutput", ["[4, 6]", "no branch"], () => backend.ResidualLayerNorm(s, y, mean, rstd, x, null, 1, 1, null, null));
        Throws("normOutput", ["'x' [4, 6]"], () => backend.ResidualLayerNorm(s, x, mean, rstd, x, branch, 1, 1, null, null));
        Throws("gradBranch", ["[4, 6]", "no branch"], () => backend.ResidualLayerNormBackward(null, branch, null, null, y, null, x, mean, rstd, null, 1, 1, false));
        Throws("gradWeight", ["[5]", "normInput [4, 6]"], () => backend.ResidualLayerNormBackward(null, null, wrongWeight, null, y, null, x, mean, rstd, weight, 1, 1, false));
        Throws("gradX", ["gradNormOutput"], () => backend.ResidualLayerNormBackward(y, null, null, null, y, null, x, mean, rstd, weight, 1, 1, false));
        Throws("beta", ["Infinity"], () => backend.Residual(y, x, branch, 1, float.PositiveInfinity));
        Throws("branch", ["[4, 7]", "[4, 6]"], () => backend.Residual(y, x, wide, 1, 1));
        Throws("gradBranch", ["[4, 7]", "[4, 6]"], () => backend.ResidualBackward(null, wide, y, 1, 1));
    }
}
