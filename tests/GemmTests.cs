using CsCheck;
using DeepScaleLM.Native.Cpu;
using Xunit.Sdk;

namespace DeepScaleLM.Tests;

/// <summary>
/// <see cref="CpuGemm"/> against a float64 loop written here, for every kernel family, transpose combination,
/// alpha/beta, leading dimension and a spread of sizes around the kernel's tile and block edges.
/// </summary>
/// <remarks>
/// Tolerance: element (i, j) may differ from the float64 result by at most
/// <c>2 * sqrt(k + 1) * eps32 * (|alpha| * sum_p |a_ip * b_pj| + |beta * c_ij|) + 1e-30</c>. The worst-case
/// bound of a length-k float32 sum is k * eps * sum|terms|; rounding errors of independent-sign data grow like
/// sqrt(k) instead (Higham's probabilistic bound), and the factor 2 covers the alpha/beta roundings. A wrong
/// index or a dropped block misses by the size of a whole term, orders of magnitude above this.
/// </remarks>
public sealed unsafe class GemmTests
{
    private static readonly GemmPath[] Paths = [GemmPath.Scalar, GemmPath.Vector256, GemmPath.Vector512];

    /// <summary>Sizes around the tile edges of every kernel (4x4, 6x16, 14x32), the depth block (256) and primes.</summary>
    public static TheoryData<int, int, int> Sizes => new()
    {
        { 0, 5, 7 }, { 5, 0, 7 }, { 5, 7, 0 }, { 1, 1, 1 }, { 2, 3, 1 }, { 3, 7, 13 }, { 7, 13, 31 },
        { 13, 31, 61 }, { 14, 32, 256 }, { 15, 33, 257 }, { 6, 16, 255 }, { 31, 67, 127 }, { 61, 131, 67 },
        { 127, 1, 131 }, { 1, 127, 300 }, { 13, 40, 513 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void EveryKernelAndTransposeMatchesTheReference(int m, int n, int k)
    {
        foreach (var (transA, transB) in Transposes)
            foreach (float beta in new[] { 0f, -0.5f })
            {
                var gemm = new GemmCase(transA, transB, m, n, k, alpha: 1.25f, beta, padding: 0, seed: m * 31 + n * 7 + k);
                foreach (var path in Paths) gemm.Verify(path, pool: null);
            }
    }

    [Theory]
    [InlineData(131, 67, 120)]  // just above the parallel threshold (2^20 multiply-adds)
    [InlineData(505, 17, 130)]  // straddles MC (504 rows)
    [InlineData(45, 80, 300)]   // straddles KC (256)
    [InlineData(20, 1000, 60)]  // too few rows for every thread: chunks split the columns too
    public void ParallelMatchesTheReference(int m, int n, int k)
    {
        using var pool = new WorkerPool(3);
        foreach (var (transA, transB) in Transposes)
        {
            var gemm = new GemmCase(transA, transB, m, n, k, alpha: -0.75f, beta: 0.5f, padding: 3, seed: m + n + k);
            gemm.Verify(CpuGemm.BestPath, pool);
            gemm.Verify(GemmPath.Vector256, pool);
        }
    }

    [Fact]
    public void BandsOfColumnsCoverAWideMatrix()
    {
        // k * n exceeds one 16 MiB packed band, so C is computed in several bands.
        using var pool = new WorkerPool(2);
        new GemmCase(false, true, 3, 4000, 1100, alpha: 1f, beta: 1f, padding: 1, seed: 5).Verify(CpuGemm.BestPath, pool);
    }

    [Fact]
    public void LeadingDimensionsLargerThanRowsAreHonouredAndPaddingIsUntouched()
    {
        using var pool = new WorkerPool(2);
        foreach (var (transA, transB) in Transposes)
            foreach (int padding in new[] { 1, 17 })
            {
                new GemmCase(transA, transB, 20, 40, 300, alpha: 2f, beta: 1f, padding, seed: padding).Verify(CpuGemm.BestPath, null);
                new GemmCase(transA, transB, 100, 60, 180, alpha: 1f, beta: 0f, padding, seed: padding).Verify(CpuGemm.BestPath, pool);
            }
    }

    [Fact]
    public void ZeroAlphaOrZeroDepthScalesCByBetaWithoutReadingIt()
    {
        foreach (var path in Paths)
        {
            new GemmCase(false, false, 9, 33, 0, alpha: 1f, beta: 0f, padding: 2, seed: 1).Verify(path, null);
            new GemmCase(true, false, 9, 33, 0, alpha: 1f, beta: 3f, padding: 2, seed: 2).Verify(path, null);
            new GemmCase(false, true, 9, 33, 12, alpha: 0f, beta: 0f, padding: 2, seed: 3).Verify(path, null);
            new GemmCase(true, true, 9, 33, 12, alpha: 0f, beta: -2f, padding: 2, seed: 4).Verify(path, null);
        }
    }

    [Fact]
    public void PublicEntryPointsAgree()
    {
        using var pool = new WorkerPool(2);
        var gemm = new CpuGemm(pool);
        foreach (var (transA, transB) in Transposes)
        {
            new GemmCase(transA, transB, 150, 70, 90, 1f, 0f, padding: 2, seed: 8).Verify((a, b, c, g) =>
                gemm.Multiply(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc));
            new GemmCase(transA, transB, 50, 70, 90, 1f, 1f, padding: 2, seed: 9).Verify((a, b, c, g) =>
                CpuGemm.MultiplySerial(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc));
        }
    }

    [Fact]
    public void MultiplySerialIsSafeFromConcurrentThreads()
    {
        // Like the attention kernel: many small per-head products at once, each thread with its own packing buffers.
        var cases = Enumerable.Range(0, 8)
            .Select(i => new GemmCase(i % 2 == 0, i % 3 == 0, 128 - i, 64 + i, 128, 1f, 0f, padding: i % 3, seed: i))
            .ToArray();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            cases[i % cases.Length].Verify((a, b, c, g) =>
                CpuGemm.MultiplySerial(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc)));
    }

    [Fact]
    public void RandomShapesMatchTheReference()
    {
        using var pool = new WorkerPool(2);
        Gen.Select(Gen.Int[0, 40], Gen.Int[0, 40], Gen.Int[0, 40], Gen.Int[0, 3], Gen.Int[0, 5], Gen.Int[0, 2])
            .Select((m, n, k, transposes, padding, betaKind) => (m, n, k, transposes, padding, betaKind))
            .Sample(s => new GemmCase((s.transposes & 1) != 0, (s.transposes & 2) != 0, s.m, s.n, s.k,
                    alpha: 0.5f, beta: s.betaKind - 1, s.padding, seed: s.m * 1681 + s.n * 41 + s.k)
                .Verify(CpuGemm.BestPath, s.m * s.n > 600 ? pool : null), iter: 300, threads: 1);
    }

    private static readonly (bool, bool)[] Transposes = [(false, false), (false, true), (true, false), (true, true)];

    /// <summary>One GEMM's operands (stored with leading dimensions and padding), and its float64 reference.</summary>
    private sealed class GemmCase
    {
        private const float PaddingSentinel = 12345f;
        /// <summary>float32 machine epsilon, 2^-23 (float.Epsilon is the smallest subnormal instead).</summary>
        private const double Eps32 = 1.0 / (1 << 23);
        private readonly float[] _a, _b, _c;
        private readonly Lazy<(double[] Expected, double[] Tolerance)> _reference;

        public GemmCase(bool transA, bool transB, int m, int n, int k, float alpha, float beta, int padding, int seed)
        {
            (TransA, TransB, M, N, K, Alpha, Beta) = (transA, transB, m, n, k, alpha, beta);
            Lda = (transA ? m : k) + padding;
            Ldb = (transB ? k : n) + padding;
            Ldc = n + padding;
            var random = new Random(seed);
            _a = Random(random, (transA ? k : m) * Lda);
            _b = Random(random, (transB ? n : k) * Ldb);
            _c = new float[m * Ldc];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < Ldc; j++)
                    // beta = 0 must not read C: NaN there would poison any read.
                    _c[i * Ldc + j] = j >= n ? PaddingSentinel : beta == 0f ? float.NaN : (float)(random.NextDouble() * 2 - 1);
            _reference = new(Reference);
        }

        public bool TransA { get; }
        public bool TransB { get; }
        public int M { get; }
        public int N { get; }
        public int K { get; }
        public float Alpha { get; }
        public float Beta { get; }
        public int Lda { get; }
        public int Ldb { get; }
        public int Ldc { get; }

        public delegate void Gemm(float* a, float* b, float* c, GemmCase g);

        public void Verify(GemmPath path, WorkerPool? pool) => Verify((a, b, c, g) =>
            CpuGemm.Run(path, new CpuGemm.Problem(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc), pool),
            $"{path} {(pool is null ? "serial" : "parallel")}");

        /// <summary>Runs <paramref name="gemm"/> on a copy of C and checks every element, padding included.</summary>
        public void Verify(Gemm gemm, string what = "")
        {
            var c = (float[])_c.Clone();
            fixed (float* pa = _a, pb = _b, pc = c) gemm(pa, pb, pc, this);
            var (expected, tolerance) = _reference.Value;
            string name = $"{what} m={M} n={N} k={K} transA={TransA} transB={TransB} alpha={Alpha} beta={Beta} lda={Lda} ldb={Ldb} ldc={Ldc}";
            for (int i = 0; i < M; i++)
                for (int j = 0; j < Ldc; j++)
                {
                    int at = i * Ldc + j;
                    if (j >= N)
                    {
                        if (c[at] != PaddingSentinel) throw new XunitException($"{name}: padding C[{i}, {j}] was overwritten with {c[at]}");
                    }
                    else if (!(Math.Abs(c[at] - expected[at]) <= tolerance[at]))
                        throw new XunitException($"{name}: C[{i}, {j}] = {c[at]:R}, expected {expected[at]:R} (tolerance {tolerance[at]:E2})");
                }
        }

        /// <summary>The float64 result and the per-element tolerance (see the class remarks), laid out like C.</summary>
        private (double[] Expected, double[] Tolerance) Reference()
        {
            var expected = new double[_c.Length];
            var tolerance = new double[_c.Length];
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int p = 0; p < K; p++)
                    {
                        double term = (double)(TransA ? _a[p * Lda + i] : _a[i * Lda + p]) * (TransB ? _b[j * Ldb + p] : _b[p * Ldb + j]);
                        sum += term;
                        magnitude += Math.Abs(term);
                    }
                    double old = Beta == 0f ? 0 : (double)Beta * _c[i * Ldc + j];
                    expected[i * Ldc + j] = Alpha * sum + old;
                    tolerance[i * Ldc + j] = 2 * Math.Sqrt(K + 1) * Eps32 * (Math.Abs(Alpha) * magnitude + Math.Abs(old)) + 1e-30;
                }
            return (expected, tolerance);
        }

        private static float[] Random(Random random, int count)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
            return values;
        }
    }
}
