using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>Token + position embedding lookup and its scatter-add backward.</summary>
public sealed class EmbeddingTests
{
    /// <summary>float32 machine epsilon, 2^-23.</summary>
    private const double Eps = 1.0 / (1 << 23);

    /// <summary>One random case: batch, tokens, vocabulary, channels, position rows beyond the tokens (-1: none), seed.</summary>
    private static readonly Gen<(int Batch, int Tokens, int Vocabulary, int Channels, int ExtraPositions, int Seed)> Cases =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 9], Gen.Int[1, 23], Gen.Int[0, 70], Gen.Int[-1, 3], Gen.Int[0, 1 << 20]);

    [Fact]
    public void ForwardAddsTheRowsOfBothTables()
    {
        using var backend = new CpuBackend();
        Cases.Sample(c =>
        {
            using var inputs = new Inputs(backend, c);
            var (tokens, table, positions) = (inputs.Tokens, inputs.Table, inputs.Positions);
            using var output = backend.Allocate(c.Batch, c.Tokens, c.Channels);
            backend.Embedding(output, tokens, table, positions);

            var ids = ReadInts(backend, tokens);
            var t = TestData.Read(backend, table);
            var p = positions is null ? null : TestData.Read(backend, positions);
            var expected = new double[c.Batch * c.Tokens * c.Channels];
            for (int r = 0; r < c.Batch * c.Tokens; r++)
                for (int k = 0; k < c.Channels; k++)
                    expected[r * c.Channels + k] = (float)t[ids[r] * c.Channels + k] + (p is null ? 0f : (float)p[r % c.Tokens * c.Channels + k]);
            // One float32 addition, as the reference does in float32: exact agreement.
            Assert.Equal(expected, TestData.Read(backend, output));
        }, iter: 60, threads: 1);
    }

    [Fact]
    public void BackwardMatchesFiniteDifferencesAndAccumulates()
    {
        using var backend = new CpuBackend();
        Cases.Sample(c =>
        {
            using var inputs = new Inputs(backend, c);
            var (tokens, table, positions) = (inputs.Tokens, inputs.Table, inputs.Positions);
            int rows = c.Batch * c.Tokens;
            var ids = ReadInts(backend, tokens);
            var t = TestData.Read(backend, table);
            var p = positions is null ? [] : TestData.Read(backend, positions);
            var w = TestData.RoundToSingle(TestData.Normal(c.Seed + 1, rows * c.Channels));
            using var gradOutput = TestData.Tensor(backend, w, c.Batch, c.Tokens, c.Channels);

            // loss = sum(w * out) over both tables' values laid end to end.
            double Loss(double[] both)
            {
                double sum = 0;
                for (int r = 0; r < rows; r++)
                    for (int k = 0; k < c.Channels; k++)
                        sum += w[r * c.Channels + k] * (both[ids[r] * c.Channels + k] + (positions is null ? 0 : both[t.Length + r % c.Tokens * c.Channels + k]));
                return sum;
            }
            var gradient = Numerics.Gradient(Loss, [.. t, .. p]);

            var priorTable = TestData.RoundToSingle(TestData.Normal(c.Seed + 2, t.Length));
            var priorPositions = TestData.RoundToSingle(TestData.Normal(c.Seed + 3, p.Length));
            using var gradTable = TestData.Tensor(backend, priorTable, c.Vocabulary, c.Channels);
            using var gradPositions = positions is null ? null : TestData.Tensor(backend, priorPositions, positions.Shape[0], c.Channels);
            backend.EmbeddingBackward(gradTable, gradPositions, gradOutput, tokens);
            // A row repeated k times sums k + 1 float32 values: k roundings of Eps/2 each of the running sum; k <= 45 here.
            double tolerance = 32 * Eps;
            Numerics.AssertClose(priorTable.Zip(gradient[..t.Length], (a, b) => a + b).ToArray(), TestData.Read(backend, gradTable), tolerance, 1e-9, "gradTokenTable");
            if (gradPositions is not null)
                Numerics.AssertClose(priorPositions.Zip(gradient[t.Length..], (a, b) => a + b).ToArray(), TestData.Read(backend, gradPositions), tolerance, 1e-9, "gradPositionTable");
        }, iter: 40, threads: 1);
    }

    [Fact]
    public void BackwardWithOneTableLeavesTheOtherAlone()
    {
        using var backend = new CpuBackend();
        using var tokens = TestData.IntTensor(backend, [1, 0, 1, 2], 2, 2);
        using var gradOutput = TestData.Tensor(backend, Enumerable.Range(1, 12).Select(v => (double)v).ToArray(), 2, 2, 3);
        using var gradTable = backend.Allocate(3, 3);
        using var gradPositions = backend.Allocate(4, 3);
        backend.EmbeddingBackward(gradTable, null, gradOutput, tokens);
        Assert.Equal([4, 5, 6, 1 + 7, 2 + 8, 3 + 9, 10, 11, 12], TestData.Read(backend, gradTable));
        backend.EmbeddingBackward(null, gradPositions, gradOutput, tokens);
        Assert.Equal([1 + 7, 2 + 8, 3 + 9, 4 + 10, 5 + 11, 6 + 12, 0, 0, 0, 0, 0, 0], TestData.Read(backend, gradPositions));
        backend.EmbeddingBackward(null, null, gradOutput, tokens);
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        // Many repeats of few ids, wide enough for several channel blocks and row groups.
        int batch = 8, count = 512, vocabulary = 37, channels = 200;
        var ids = TestData.Integers(1, batch * count, vocabulary);
        var values = TestData.Normal(2, (long)vocabulary * channels);
        var positions = TestData.Normal(3, (long)count * channels);
        var g = TestData.Normal(4, (long)batch * count * channels);
        var serial = Run(1);
        var parallel = Run(3);
        for (int i = 0; i < serial.Length; i++) Assert.Equal(serial[i], parallel[i]);

        double[][] Run(int threads)
        {
            using var backend = new CpuBackend(threads);
            using var tokens = TestData.IntTensor(backend, ids, batch, count);
            using var table = TestData.Tensor(backend, values, vocabulary, channels);
            using var position = TestData.Tensor(backend, positions, count, channels);
            using var gradOutput = TestData.Tensor(backend, g, batch, count, channels);
            using var output = backend.Allocate(batch, count, channels);
            using var gradTable = backend.Allocate(vocabulary, channels);
            using var gradPosition = backend.Allocate(count, channels);
            backend.Embedding(output, tokens, table, position);
            backend.EmbeddingBackward(gradTable, gradPosition, gradOutput, tokens);
            return [TestData.Read(backend, output), TestData.Read(backend, gradTable), TestData.Read(backend, gradPosition)];
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(10)]
    [InlineData(int.MinValue)]
    public void OutOfRangeTokenNamesItsIndexAndValue(int bad)
    {
        using var backend = new CpuBackend();
        var ids = new int[40];
        ids[37] = bad;
        using var tokens = TestData.IntTensor(backend, ids, 2, 20);
        using var table = backend.Allocate(10, 4);
        using var output = backend.Allocate(2, 20, 4);
        using var gradOutput = backend.Allocate(2, 20, 4);
        Rejection.Expect(() => backend.Embedding(output, tokens, table, null), "tokens", $"{bad}", "index 37", "[0, 10)", "tokenTable");
        Rejection.Expect(() => backend.EmbeddingBackward(table, null, gradOutput, tokens), "tokens", $"{bad}", "index 37", "gradTokenTable");
        // Without a token table gradient the ids are not read.
        backend.EmbeddingBackward(null, null, gradOutput, tokens);
    }

    [Fact]
    public void RejectsBadShapes()
    {
        using var backend = new CpuBackend();
        using var tokens = backend.Allocate(DType.Int32, 2, 5);
        using var table = backend.Allocate(10, 4);
        using var output = backend.Allocate(2, 5, 4);
        using var floats = backend.Allocate(2, 5);
        Rejection.Expect(() => backend.Embedding(backend.Allocate(2, 5, 3), tokens, table, null), "output", "[2, 5, 3]", "[2, 5, 4]", "tokenTable [10, 4]");
        Rejection.Expect(() => backend.Embedding(output, floats, table, null), "tokens", "Float32", "Int32");
        Rejection.Expect(() => backend.Embedding(output, tokens, table, backend.Allocate(4, 4)), "positionTable", "[4, 4]", "[>= 5, 4]");
        Rejection.Expect(() => backend.Embedding(output, tokens, table, backend.Allocate(5, 3)), "positionTable", "[5, 3]");
        Rejection.Expect(() => backend.Embedding(output, tokens, backend.Allocate(40), null), "tokenTable", "rank");
        Rejection.Expect(() => backend.Embedding(table.View(2, 5, 4), tokens, table, null), "output", "overlaps");
        Rejection.Expect(() => backend.EmbeddingBackward(backend.Allocate(10, 3), null, output, tokens), "gradTokenTable", "[10, 3]", "gradOutput [2, 5, 4]");
        Rejection.Expect(() => backend.EmbeddingBackward(null, null, output, backend.Allocate(DType.Int32, 5, 2)), "tokens", "[5, 2]", "[2, 5]");
        Rejection.Expect(() => backend.EmbeddingBackward(null, backend.Allocate(3, 4), output, tokens), "gradPositionTable", "[3, 4]");
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        using var backend = new CpuBackend();
        using var tokens = TestData.IntTensor(backend, TestData.Integers(1, 8 * 512, 100), 8, 512);
        using var table = backend.Allocate(100, 128);
        using var positions = backend.Allocate(512, 128);
        using var output = backend.Allocate(8, 512, 128);
        Allocations.AssertWarmCallAllocatesNothing(() => backend.Embedding(output, tokens, table, positions));
        Allocations.AssertWarmCallAllocatesNothing(() => backend.EmbeddingBackward(table, positions, output, tokens));
    }

    /// <summary>The random tensors of one case: ids, token table and (when ExtraPositions &gt;= 0) a position table.</summary>
    private sealed class Inputs : IDisposable
    {
        public Inputs(Backend backend, (int Batch, int Tokens, int Vocabulary, int Channels, int ExtraPositions, int Seed) c)
        {
            Tokens = TestData.IntTensor(backend, TestData.Integers(c.Seed, c.Batch * c.Tokens, c.Vocabulary), c.Batch, c.Tokens);
            Table = TestData.Tensor(backend, TestData.Normal(c.Seed + 4, c.Vocabulary * c.Channels), c.Vocabulary, c.Channels);
            int rows = c.Tokens + c.ExtraPositions;
            Positions = c.ExtraPositions < 0 ? null : TestData.Tensor(backend, TestData.Normal(c.Seed + 5, rows * c.Channels), rows, c.Channels);
        }

        public Tensor Tokens { get; }
        public Tensor Table { get; }
        public Tensor? Positions { get; }

        public void Dispose()
        {
            Tokens.Dispose();
            Table.Dispose();
            Positions?.Dispose();
        }
    }

    private static int[] ReadInts(Backend backend, Tensor tensor)
    {
        var values = new int[tensor.ElementCount];
        backend.Download<int>(values, tensor);
        return values;
    }
}
