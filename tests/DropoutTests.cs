using CsCheck;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>Philox4x32-10 and the dropout mask drawn from it.</summary>
public sealed class DropoutTests
{
    /// <summary>Sample size of the statistical tests: 5 sigma of a rate is then at most 5 * 0.5 / sqrt(n) = 0.0055.</summary>
    private const int Samples = 1 << 18;

    [Theory]
    // Random123 kat_vectors, philox4x32 with 10 rounds: counter, key, expected output.
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void PhiloxMatchesKnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint x0, uint x1, uint x2, uint x3) =>
        Assert.Equal((x0, x1, x2, x3), Philox.Block(c0, c1, c2, c3, k0, k1));

    [Fact]
    public void WordsFollowTheDocumentedCounterLayout()
    {
        // Element i: word i % 4 of the block with counter (lo(i/4), hi(i/4), lo(offset), hi(offset)), key (lo(seed), hi(seed)).
        ulong seed = 0x0123456789abcdef, offset = 0xfedcba9876543210;
        foreach (long i in new[] { 0L, 1, 2, 3, 4, 5, 1023, (1L << 34) + 2, (1L << 34) + 7, long.MaxValue })
        {
            ulong block = (ulong)i >> 2;
            var words = Philox.Block((uint)block, (uint)(block >> 32), (uint)offset, (uint)(offset >> 32), (uint)seed, (uint)(seed >> 32));
            Assert.Equal(new[] { words.X0, words.X1, words.X2, words.X3 }[i & 3], Philox.Word(seed, offset, i));
        }
        var uniforms = new float[37];
        Philox.Uniforms(uniforms, seed, offset, 5);
        for (int i = 0; i < uniforms.Length; i++) Assert.Equal(Philox.ToUniform(Philox.Word(seed, offset, 5 + i)), uniforms[i]);
    }

    [Fact]
    public void VectorisedWordsMatchTheScalarGenerator()
    {
        // Including blocks whose index carries into the counter's high word.
        Gen.Select(Gen.ULong, Gen.ULong, Gen.OneOf(Gen.ULong[0, 1000], Gen.ULong[(1ul << 32) - 20, (1ul << 32) + 20], Gen.ULong[0, ulong.MaxValue >> 2]))
            .Sample((seed, offset, firstBlock) =>
            {
                var (first, second) = Philox.Words32(seed, offset, firstBlock);
                for (int j = 0; j < 16; j++)
                {
                    Assert.Equal(Philox.Word(seed, offset, (long)(4 * firstBlock) + j), first[j]);
                    Assert.Equal(Philox.Word(seed, offset, (long)(4 * firstBlock) + 16 + j), second[j]);
                }
            }, iter: 200, threads: 1);
    }

    [Fact]
    public void KeepThresholdIsTheUniformComparison()
    {
        // The kernel compares raw words with a threshold; it must agree with ToUniform(word) >= p for every p,
        // including the p that fall between two representable uniforms.
        var random = new Random(3);
        foreach (float p in new[] { 0f, float.Epsilon, 1e-7f, 0.1f, 0.5f, 0.9f, MathF.BitDecrement(1f) }.Concat(Enumerable.Range(0, 200).Select(_ => (float)random.NextDouble())))
        {
            uint threshold = Philox.KeepThreshold(p);
            foreach (uint word in new[] { 0u, threshold - 1, threshold, threshold + 1, threshold - 256, threshold + 255, uint.MaxValue, (uint)random.NextInt64(1L << 32) })
                Assert.Equal(Philox.ToUniform(word) >= p, word >= threshold);
        }
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.5f)]
    [InlineData(0.9f)]
    public void MaskFollowsPhiloxAndKeptValuesAreExactAtEveryLength(float p)
    {
        using var backend = new CpuBackend();
        for (int n = 0; n <= 300; n++)
        {
            ulong seed = (ulong)n * 7919, offset = (ulong)n;
            var x = TestData.RoundToSingle(TestData.Normal(n, n));
            using var input = TestData.Tensor(backend, x, n);
            using var output = backend.Allocate(n);
            backend.Dropout(output, input, p, seed, offset);
            var y = TestData.Read(backend, output);
            for (int i = 0; i < n; i++)
            {
                bool keep = Philox.ToUniform(Philox.Word(seed, offset, i)) >= p;
                Assert.Equal(keep ? (float)x[i] / (1f - p) : 0f, (float)y[i]);
            }
        }
    }

    [Fact]
    public void MaskIsTheSameForAnyThreadCountAndShape()
    {
        int n = 3 * ElementWise.ChunkLength + 45;
        var x = TestData.Normal(2, n);
        Assert.Equal(Run(1, [n]), Run(3, [n]));
        Assert.Equal(Run(1, [n]), Run(2, [3, n / 3]));

        double[] Run(int threads, int[] dims)
        {
            using var backend = new CpuBackend(threads);
            using var input = TestData.Tensor(backend, x, n);
            using var output = backend.Allocate(n);
            backend.Dropout(output.View(dims), input.View(dims), 0.3f, 42, 7);
            return TestData.Read(backend, output);
        }
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.5f)]
    [InlineData(0.9f)]
    public void KeepRateAndIndependenceAreWithinFiveSigma(float p)
    {
        using var backend = new CpuBackend();
        var same1 = Mask(backend, p, 11, 0);
        var same2 = Mask(backend, p, 11, 0);
        Assert.Equal(same1, same2);

        // Binomial: the kept count of n draws has standard deviation sqrt(n q (1-q)).
        AssertRate(same1.Count(k => k), 1 - p, "keep rate");
        // Independent masks agree on an element with probability p^2 + (1-p)^2.
        double agree = p * p + (1 - p) * (1 - p);
        AssertRate(Agreements(same1, Mask(backend, p, 11, 1)), agree, "agreement across offsets");
        AssertRate(Agreements(same1, Mask(backend, p, 12, 0)), agree, "agreement across seeds");
        AssertRate(Agreements(same1, Mask(backend, p, 11, 1ul << 32)), agree, "agreement across high offset words");

        static int Agreements(bool[] a, bool[] b) => a.Zip(b).Count(pair => pair.First == pair.Second);

        static void AssertRate(int count, double q, string what)
        {
            double sigma = Math.Sqrt(Samples * q * (1 - q));
            Assert.True(Math.Abs(count - Samples * q) <= 5 * sigma, $"{what}: {count} of {Samples}, expected {Samples * q:F0} +- {5 * sigma:F0}");
        }
    }

    [Fact]
    public void ZeroProbabilityIsTheIdentity()
    {
        using var backend = new CpuBackend();
        var x = TestData.Normal(4, 1000);
        using var input = TestData.Tensor(backend, x, 1000);
        using var output = backend.Allocate(1000);
        backend.Dropout(output, input, 0f, 1, 2);
        Assert.Equal(TestData.Read(backend, input), TestData.Read(backend, output));
        backend.Dropout(input, input, 0f, 1, 2);
        Assert.Equal(TestData.Read(backend, output), TestData.Read(backend, input));
        using var gradInput = TestData.Tensor(backend, Enumerable.Repeat(1.0, 1000).ToArray(), 1000);
        backend.DropoutBackward(gradInput, output, 0f, 1, 2);
        Assert.Equal(TestData.Read(backend, output).Select(v => (double)(1f + (float)v)), TestData.Read(backend, gradInput));
    }

    [Fact]
    public void InPlaceMatchesOutOfPlace()
    {
        using var backend = new CpuBackend();
        int n = ElementWise.ChunkLength + 3;
        using var input = TestData.Tensor(backend, TestData.Normal(5, n), n);
        using var output = backend.Allocate(n);
        backend.Dropout(output, input, 0.25f, 9, 4);
        backend.Dropout(input, input, 0.25f, 9, 4);
        Assert.Equal(TestData.Read(backend, output), TestData.Read(backend, input));
    }

    [Fact]
    public void BackwardRegeneratesTheForwardMaskAndAccumulates()
    {
        using var backend = new CpuBackend();
        Gen.Select(Gen.Int[0, 9], Gen.Int[0, 70], Gen.Single[0f, 0.95f], Gen.ULong, Gen.ULong).Sample((rows, columns, p, seed, offset) =>
        {
            int n = rows * columns;
            var g = TestData.RoundToSingle(TestData.Normal((int)(seed % 1000), n));
            var prior = TestData.RoundToSingle(TestData.Normal((int)(offset % 1000), n));
            using var gradOutput = TestData.Tensor(backend, g, rows, columns);
            using var forward = backend.Allocate(rows, columns);
            using var gradInput = TestData.Tensor(backend, prior, rows, columns);
            backend.Dropout(forward, gradOutput, p, seed, offset);
            backend.DropoutBackward(gradInput, gradOutput, p, seed, offset);
            // The backward adds exactly what the forward produced for the same values: one float32 addition.
            var expected = prior.Zip(TestData.Read(backend, forward), (a, b) => (double)((float)a + (float)b));
            Assert.Equal(expected, TestData.Read(backend, gradInput));
        }, iter: 60, threads: 1);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        using var backend = new CpuBackend();
        using var a = backend.Allocate(4, 5);
        using var b = backend.Allocate(5, 4);
        using var storage = backend.Allocate(40);
        Rejection.Expect(() => backend.Dropout(a, a, 1f, 0, 0), "probability", "1");
        Rejection.Expect(() => backend.Dropout(a, a, -0.1f, 0, 0), "probability", "-0.1");
        Rejection.Expect(() => backend.Dropout(a, a, float.NaN, 0, 0), "probability", "NaN");
        Rejection.Expect(() => backend.Dropout(b, a, 0.5f, 0, 0), "output", "[5, 4]", "[4, 5]");
        Rejection.Expect(() => backend.Dropout(storage.Slice(2, 4, 5), storage.Slice(0, 4, 5), 0.5f, 0, 0), "output", "overlaps");
        Rejection.Expect(() => backend.DropoutBackward(a, b, 0.5f, 0, 0), "gradInput", "[4, 5]", "[5, 4]");
        Rejection.Expect(() => backend.DropoutBackward(a, a, 0.5f, 0, 0), "gradInput", "overlaps");
        Rejection.Expect(() => backend.DropoutBackward(a, storage.Slice(20, 4, 5), 1.5f, 0, 0), "probability", "1.5");
    }

    [Fact]
    public void WarmCallsAllocateNothing()
    {
        using var backend = new CpuBackend();
        int n = 2 * ElementWise.ChunkLength + 5;
        using var x = TestData.Tensor(backend, TestData.Normal(1, n), n);
        using var y = backend.Allocate(n);
        Allocations.AssertWarmCallAllocatesNothing(() => backend.Dropout(y, x, 0.1f, 1, 2));
        Allocations.AssertWarmCallAllocatesNothing(() => backend.DropoutBackward(y, x, 0.1f, 1, 2));
    }

    private static bool[] Mask(Backend backend, float p, ulong seed, ulong offset)
    {
        using var ones = TestData.Tensor(backend, Enumerable.Repeat(1.0, Samples).ToArray(), Samples);
        backend.Dropout(ones, ones, p, seed, offset);
        return TestData.Read(backend, ones).Select(v => v != 0).ToArray();
    }
}
