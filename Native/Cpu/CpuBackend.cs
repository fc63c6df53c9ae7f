using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// The C# backend: SIMD kernels (Vector512/Vector256 with scalar tails), a packed cache-blocked GEMM, and a
/// worker pool across the machine's cores. It is both a real backend and the reference every other backend is
/// checked against. Ops allocate nothing per call; workspaces grow once.
/// </summary>
public sealed partial class CpuBackend : Backend
{
    private readonly WorkerPool _pool;
    private readonly CpuGemm _gemm;

    /// <summary>A CPU backend that uses <paramref name="threadCount"/> threads (default: every core).</summary>
    public CpuBackend(int? threadCount = null)
    {
        int threads = threadCount ?? Environment.ProcessorCount;
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threadCount), threads, "at least one thread is required");
        _pool = new WorkerPool(threads);
        _gemm = new CpuGemm(_pool);
    }

    /// <inheritdoc/>
    public override Device Device => Device.Cpu;

    /// <summary>Threads the kernels run on, the caller included.</summary>
    public int ThreadCount => _pool.ThreadCount;

    internal WorkerPool Pool => _pool;

    /// <inheritdoc/>
    protected override TensorStorage AllocateStorage(long byteLength) => new CpuStorage(byteLength);

    /// <inheritdoc/>
    protected override void UploadCore<T>(Tensor destination, ReadOnlySpan<T> source) => source.CopyTo(destination.AsSpan<T>());

    /// <inheritdoc/>
    protected override void DownloadCore<T>(Span<T> destination, Tensor source) => source.AsSpan<T>().CopyTo(destination);

    /// <inheritdoc/>
    protected override unsafe void ZeroCore(Tensor tensor) =>
        Unsafe.InitBlockUnaligned(Address(tensor), 0, checked((uint)(tensor.ElementCount * tensor.DType.SizeInBytes())));

    /// <inheritdoc/>
    protected override unsafe void CopyCore(Tensor destination, Tensor source) =>
        Buffer.MemoryCopy(Address(source), Address(destination), destination.ElementCount * destination.DType.SizeInBytes(), source.ElementCount * source.DType.SizeInBytes());

    /// <summary>Address of the first element of a CPU tensor (for kernels that walk beyond int-sized spans).</summary>
    internal static unsafe byte* Address(Tensor tensor) =>
        ((CpuStorage)tensor.Storage).Pointer + tensor.Offset * tensor.DType.SizeInBytes();

    /// <summary>Address of the first element of a float32 CPU tensor.</summary>
    internal static unsafe float* Floats(Tensor tensor) => (float*)Address(tensor);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _pool.Dispose();
    }
}
