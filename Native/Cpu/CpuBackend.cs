using System.Runtime.InteropServices;

namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// The C# backend: SIMD kernels (Vector512/Vector256 with scalar tails), a packed cache-blocked GEMM, and a
/// worker pool across the machine's cores. It is both a real backend and the reference every other backend is
/// checked against. Ops allocate nothing per call; workspaces grow once.
/// </summary>
/// <remarks>
/// <para>Thread safety: like a CUDA stream, a backend runs one op at a time. Its grow-only workspaces (the
/// attention and layer-norm backward partials) belong to the backend, not to a call, so two threads must not run
/// ops on one backend at once: give each thread its own backend. The ops that use those workspaces check this and
/// throw <see cref="InvalidOperationException"/> on concurrent entry instead of mixing two calls' partials. The
/// other ops happen to tolerate it today (the GEMM's packing buffers are per thread, and the worker pool runs a
/// second caller's job serially on that caller), but that is not a promise.</para>
/// <para>Tensors made by one backend may be used by another CPU backend: storage belongs to no backend.</para>
/// </remarks>
public sealed partial class CpuBackend : Backend
{
    private readonly WorkerPool _pool;
    private readonly CpuGemm _gemm;
    // 1 while an op holds the instance workspaces (see WorkspaceLease).
    private int _workspacesInUse;

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
    // NativeMemory.Clear takes a native-sized length: InitBlock's uint would overflow past 4 GiB (2^30 floats).
    protected override unsafe void ZeroCore(Tensor tensor) =>
        NativeMemory.Clear(Address(tensor), (nuint)(tensor.ElementCount * tensor.DType.SizeInBytes()));

    /// <inheritdoc/>
    protected override unsafe void CopyCore(Tensor destination, Tensor source) =>
        Buffer.MemoryCopy(Address(source), Address(destination), destination.ElementCount * destination.DType.SizeInBytes(), source.ElementCount * source.DType.SizeInBytes());

    /// <summary>Address of the first element of a CPU tensor (for kernels that walk beyond int-sized spans).</summary>
    internal static unsafe byte* Address(Tensor tensor) =>
        ((CpuStorage)tensor.Storage).Pointer + tensor.Offset * tensor.DType.SizeInBytes();

    /// <summary>Address of the first element of a float32 CPU tensor.</summary>
    internal static unsafe float* Floats(Tensor tensor) => (float*)Address(tensor);

    /// <summary>
    /// Claims the backend's instance workspaces for one op (dispose the lease when the op ends). One interlocked
    /// exchange: nothing measurable next to an op that needs a workspace.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another thread is running an op on this backend.</exception>
    private WorkspaceLease LeaseWorkspaces(string op)
    {
        if (Interlocked.Exchange(ref _workspacesInUse, 1) != 0)
            throw new InvalidOperationException(
                $"CpuBackend.{op} was called while another op was using this backend's workspaces: a backend runs one op at a time, so give each thread its own backend");
        return new WorkspaceLease(this);
    }

    /// <summary>Releases the workspaces taken by <see cref="LeaseWorkspaces"/>.</summary>
    private readonly struct WorkspaceLease(CpuBackend backend) : IDisposable
    {
        public void Dispose() => Volatile.Write(ref backend._workspacesInUse, 0);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _pool.Dispose();
    }
}
