using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>
/// Misuse that must fail loudly instead of corrupting results: two threads sharing one backend's workspaces, and
/// two gradient outputs that partly overlap (rows written by different threads would race).
/// </summary>
public sealed class CpuBackendMisuseTests
{
    /// <summary>
    /// Layer-norm backward keeps its per-chunk gradWeight partials in a workspace of the backend. Two threads
    /// running it on one backend must each get either the right answer or an InvalidOperationException, never a
    /// silently mixed gradient.
    /// </summary>
    [Fact]
    public void ConcurrentWorkspaceOpsThrowInsteadOfCorrupting()
    {
        const int rows = 512, channels = 256;
        using var backend = new CpuBackend(1);
        var expected = new double[2][];
        var inputs = new (Tensor X, Tensor Grad, Tensor Mean, Tensor Rstd)[2];
        for (int t = 0; t < 2; t++)
        {
            var x = TestData.Tensor(backend, TestData.RoundToSingle(TestData.Normal(10 + t, rows * channels)), rows, channels);
            var y = backend.Allocate(rows, channels);
            var mean = backend.Allocate(rows);
            var rstd = backend.Allocate(rows);
            backend.ResidualLayerNorm(null, y, mean, rstd, x, null, 1f, 0f, null, null);
            // Different gradients per thread, so a mix-up shows.
            var grad = TestData.Tensor(backend, TestData.RoundToSingle(TestData.Normal(20 + t, rows * channels, 1 + 3 * t)), rows, channels);
            inputs[t] = (x, grad, mean, rstd);
            using var gradWeight = backend.Allocate(channels);
            backend.ResidualLayerNormBackward(null, null, gradWeight, null, grad, null, x, mean, rstd, null, 1f, 0f, hasBranch: false);
            expected[t] = TestData.Read(backend, gradWeight);
        }

        int throws = 0, wrong = 0;
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            var (x, grad, mean, rstd) = inputs[t];
            using var gradWeight = backend.Allocate(channels);
            start.SignalAndWait();
            for (int i = 0; i < 300; i++)
            {
                backend.Zero(gradWeight);
                try
                {
                    backend.ResidualLayerNormBackward(null, null, gradWeight, null, grad, null, x, mean, rstd, null, 1f, 0f, hasBranch: false);
                }
                catch (InvalidOperationException)
                {
                    Interlocked.Increment(ref throws);
                    continue;
                }
                if (!TestData.Read(backend, gradWeight).SequenceEqual(expected[t])) Interlocked.Increment(ref wrong);
            }
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void LayerNormBackwardRejectsPartlyOverlappingGradients()
    {
        using var backend = new CpuBackend(2);
        using var x = backend.Allocate(4, 8);
        using var grad = backend.Allocate(4, 8);
        using var mean = backend.Allocate(4);
        using var rstd = backend.Allocate(4);
        using var storage = backend.Allocate(5, 8);
        var gradX = storage.Slice(0, 4, 8);
        var gradBranch = storage.Slice(8, 4, 8);
        Rejection.Expect(() => backend.ResidualLayerNormBackward(gradX, gradBranch, null, null, grad, null, x, mean, rstd, null, 0.6f, 0.8f, hasBranch: true),
            "gradBranch", "gradX", "[4, 8]");
        // The very same view twice is fine: each element receives both terms on one thread.
        backend.ResidualLayerNormBackward(gradX, gradX, null, null, grad, null, x, mean, rstd, null, 0.6f, 0.8f, hasBranch: true);
    }

    [Fact]
    public void ResidualBackwardRejectsPartlyOverlappingGradients()
    {
        using var backend = new CpuBackend(2);
        using var grad = backend.Allocate(4, 8);
        using var storage = backend.Allocate(5, 8);
        Rejection.Expect(() => backend.ResidualBackward(storage.Slice(0, 4, 8), storage.Slice(3, 4, 8), grad, 0.6f, 0.8f),
            "gradBranch", "gradX", "[4, 8]");
    }

    [Fact]
    public void AttentionBackwardRejectsPartlyOverlappingGradients()
    {
        using var backend = new CpuBackend(2);
        using var q = backend.Allocate(2, 3, 4);
        using var k = backend.Allocate(2, 3, 4);
        using var v = backend.Allocate(2, 3, 4);
        using var p = backend.Allocate(2, 2, 3, 3);
        using var gradOutput = backend.Allocate(2, 3, 4);
        using var storage = backend.Allocate(3, 3, 4);
        var options = new AttentionOptions { Heads = 2 };
        Rejection.Expect(() => backend.AttentionBackward(storage.Slice(0, 2, 3, 4), storage.Slice(12, 2, 3, 4), null, null, null, gradOutput, p, q, k, v, options),
            "gradKey", "gradQuery", "[2, 3, 4]");
        Rejection.Expect(() => backend.AttentionBackward(null, storage.Slice(0, 2, 3, 4), storage.Slice(4, 2, 3, 4), null, null, gradOutput, p, q, k, v, options),
            "gradValue", "gradKey", "[2, 3, 4]");
    }

    /// <summary>Zero of a tensor past 4 GiB (2^30 floats) once overflowed a uint byte count and threw.</summary>
    [LargeFact]
    public void ZeroClearsTensorsLargerThan4GiB()
    {
        const long count = (1L << 30) + 16;
        using var backend = new CpuBackend(1);
        using var tensor = backend.Allocate(DType.Float32, (int)count);
        var tail = tensor.Slice(count - 16, 16);
        tail.AsSpan<float>().Fill(1f);
        backend.Zero(tensor);
        Assert.All(tail.AsSpan<float>().ToArray(), value => Assert.Equal(0f, value));
    }

    /// <summary>
    /// [2^21, 2^21, 2^22] holds 2^64 elements: the element count once wrapped to 0, so Allocate made a one-byte
    /// storage for a tensor whose dimensions the attention kernel would have walked far past it.
    /// </summary>
    [Fact]
    public void ShapesWhoseElementCountOverflowsAreRejected()
    {
        using var backend = new CpuBackend(1);
        Rejection.Expect(() => backend.Allocate(1 << 21, 1 << 21, 1 << 22), "dims", "[2097152, 2097152, 4194304]");
        Rejection.Expect(() => new TensorShape(int.MaxValue, int.MaxValue, int.MaxValue), "dims", "elements");
        Assert.Equal(0, new TensorShape(int.MaxValue, int.MaxValue, int.MaxValue, 0).ElementCount);
        Assert.Equal(1, default(TensorShape).ElementCount);
    }

    /// <summary>
    /// A kernel works on raw pointers, so an operand nothing references after the call (a temporary) could be
    /// finalized, and its native memory freed, while the kernel still wrote to it. The public ops keep their
    /// operands reachable until the kernel returns.
    /// </summary>
    [Fact]
    public void OperandsStayAliveWhileTheKernelRuns()
    {
        using var backend = new CpuBackend(1);
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        collector.Start();
        try
        {
            // 64 MiB each (the time Scale takes on it is the window), munmapped when freed: a write after the free faults.
            for (int i = 0; i < 8; i++) ScaleTemporary(backend);
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ScaleTemporary(CpuBackend backend) => backend.Scale(backend.Allocate(1 << 24), 2f);

    /// <summary>
    /// The attention backward's scratch is one float[] with a [Tq, Tk] slice per part. With a part per thread,
    /// T = 4096 on 128 threads asked for 2^31 floats and threw OverflowException on valid input; the part count
    /// is now capped by what one array holds.
    /// </summary>
    [Theory]
    [InlineData(128, 1536, 4096L * 4096 + 16)]
    [InlineData(16, 4, 46000L * 46000)]
    [InlineData(8, 96, 1024L * 1024)]
    public void AttentionScratchFitsOneArray(int threads, int heads, long stride)
    {
        int parts = CpuBackend.AttentionScratchParts(threads, heads, stride);
        Assert.InRange(parts, 1, Math.Min(threads, heads));
        Assert.True(parts == 1 || parts * stride <= Array.MaxLength, $"{parts} parts of {stride} floats");
        if (threads * stride <= Array.MaxLength && heads >= threads) Assert.Equal(threads, parts);
    }
}
