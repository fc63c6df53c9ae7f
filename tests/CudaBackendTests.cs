using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Tests;

/// <summary>
/// The CUDA device the GPU tests share, opened once. Without a device (no driver, no GPU) the reason starts with
/// "no CUDA device" and those tests are skipped with it; a device that exists but cannot be opened (a PTX the
/// driver rejects, cuBLAS missing) is NOT a skip: the tests then run and fail with the reason.
/// </summary>
internal static class CudaDevice
{
    private static readonly Lazy<(CudaBackend? Backend, string? Reason)> Opened = new(() =>
        CudaBackend.TryCreate(0, out var backend, out var reason) ? (backend, null) : (null, reason));

    /// <summary>Why there is no device to test on, or null when there is one (or one that fails to open).</summary>
    public static string? SkipReason =>
        Opened.Value.Reason is { } reason && reason.StartsWith("no CUDA device", StringComparison.Ordinal) ? reason : null;

    /// <summary>The shared backend (tests using it are in the "cuda" collection, so one runs at a time).</summary>
    public static CudaBackend Backend => Opened.Value.Backend ?? throw new InvalidOperationException(Opened.Value.Reason);
}

/// <summary>A fact that needs a CUDA GPU: skipped with the reason "no CUDA device: ..." where there is none.</summary>
internal sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (CudaDevice.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory that needs a CUDA GPU (see <see cref="CudaFactAttribute"/>).</summary>
internal sealed class CudaTheoryAttribute : TheoryAttribute
{
    public CudaTheoryAttribute()
    {
        if (CudaDevice.SkipReason is { } reason) Skip = reason;
    }
}

[Collection("cuda")]
public class CudaBackendTests
{
    [Fact]
    public void TryCreateGivesAReasonInsteadOfThrowing()
    {
        bool created = CudaBackend.TryCreate(0, out var backend, out var reason);
        using (backend)
        {
            if (created)
            {
                Assert.Null(reason);
                Assert.Equal(Device.Cuda(0), backend!.Device);
            }
            else
            {
                Assert.Null(backend);
                // This machine has no GPU: the reason names what is missing (the driver library, or a device).
                Assert.StartsWith("no CUDA device", reason);
                Assert.True(reason!.Contains("libcuda.so.1", StringComparison.Ordinal) || reason.Contains("no GPU", StringComparison.Ordinal), reason);
            }
        }
    }

    [Fact]
    public void NegativeOrdinalIsRejectedWithItsNumber()
    {
        Assert.False(CudaBackend.TryCreate(-1, out var backend, out var reason));
        Assert.Null(backend);
        Assert.Equal("no CUDA device -1: ordinals start at 0", reason);
    }

    [Fact]
    public void BackendsMakeTheCpuBackendAndExplainAMissingGpu()
    {
        using (var cpu = Backends.Create(Device.Parse("cpu"), threads: 1))
            Assert.Equal(1, Assert.IsType<CpuBackend>(cpu).ThreadCount);
        if (CudaDevice.SkipReason is null) return;
        var error = Assert.Throws<InvalidOperationException>(() => Backends.Create(Device.Parse("cuda:3")));
        Assert.StartsWith("no CUDA device", error.Message);
    }

    [Theory]
    [InlineData(0, 256)]
    [InlineData(1, 256)]
    [InlineData(256, 256)]
    [InlineData(257, 512)]
    [InlineData(1 << 20, 1 << 20)]
    [InlineData((1 << 20) + 1, 2 << 20)]
    [InlineData((5L << 20) + 7, 6L << 20)]
    public void AllocatorBucketsArePowersOfTwoThenTwoMebibyteSteps(long request, long bucket) =>
        Assert.Equal(bucket, CudaAllocator.BucketSize(request));

    [Fact]
    public void KernelArgumentsSitLittleEndianInEightByteSlots()
    {
        var arguments = new KernelArguments().With(0x1122334455667788UL).With(-1).With(1.5f).With(-2L);
        ulong[] expected = [0x1122334455667788UL, 0xFFFFFFFFUL, BitConverter.SingleToUInt32Bits(1.5f), unchecked((ulong)-2L)];
        Assert.Equal(expected, KernelArguments.Values(ref arguments).ToArray());
    }

    [CudaFact]
    public void UploadDownloadZeroAndCopyRoundTrip()
    {
        var backend = CudaDevice.Backend;
        float[] values = [.. Enumerable.Range(0, 1000).Select(i => i * 0.25f - 3f)];
        using var a = backend.Allocate(10, 100);
        using var b = backend.Allocate(10, 100);
        var read = new float[1000];
        backend.Download<float>(read, a);
        Assert.All(read, value => Assert.Equal(0f, value));
        backend.Upload<float>(a, values);
        backend.Copy(b, a);
        backend.Download<float>(read, b);
        Assert.Equal(values, read);
        backend.Zero(a.Slice(100, 10, 10));
        backend.Download<float>(read, a);
        Assert.Equal(values[..100], read[..100]);
        Assert.All(read[100..200], value => Assert.Equal(0f, value));
    }

    [CudaFact]
    public void TransfersPastTwoGibibytesRoundTrip()
    {
        // A 1000-block model's checkpoint downloads 3.2 GB at once; the byte count once overflowed an int
        // (cuMemcpyDtoHAsync_v2(-1135400960): CUDA_ERROR_INVALID_VALUE, seen on an H100).
        var backend = CudaDevice.Backend;
        const int count = (1 << 29) + 1000; // 2 GiB + 4000 bytes
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = i % 1009;
        using var tensor = backend.Allocate(count);
        backend.Upload<float>(tensor, values);
        var read = new float[count];
        backend.Download<float>(read, tensor);
        Assert.True(values.AsSpan().SequenceEqual(read));
    }

    [CudaFact]
    public void FreedBlocksAreReusedWithoutAskingTheDriver()
    {
        var backend = CudaDevice.Backend;
        backend.Allocate(1000, 1000).Dispose();
        long reserved = backend.ReservedBytes;
        for (int i = 0; i < 5; i++) backend.Allocate(1000, 1000).Dispose();
        Assert.Equal(reserved, backend.ReservedBytes);
    }

    [CudaFact]
    public void AttentionBackwardRepeatsBitForBit()
    {
        var backend = CudaDevice.Backend;
        var random = new Random(3);
        float[] Values(int n) => [.. Enumerable.Range(0, n).Select(_ => random.NextSingle() - 0.5f)];
        using var q = backend.Allocate(2, 64, 32);
        using var k = backend.Allocate(2, 64, 32);
        using var v = backend.Allocate(2, 64, 32);
        using var p = backend.Allocate(2, 4, 64, 64);
        using var o = backend.Allocate(2, 64, 32);
        using var gradOutput = backend.Allocate(2, 64, 32);
        foreach (var t in new[] { q, k, v, gradOutput }) backend.Upload<float>(t, Values(2 * 64 * 32));
        var options = new AttentionOptions { Heads = 4, Causal = true };
        backend.Attention(o, p, q, k, v, options);
        float[] Run()
        {
            using var gradQuery = backend.Allocate(2, 64, 32);
            backend.AttentionBackward(gradQuery, null, null, null, null, gradOutput, p, q, k, v, options);
            var result = new float[2 * 64 * 32];
            backend.Download<float>(result, gradQuery);
            return result;
        }
        Assert.Equal(Run(), Run());
    }
}
