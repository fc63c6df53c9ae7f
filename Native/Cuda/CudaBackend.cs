using System.Runtime.InteropServices;
using System.Text;
using DeepScaleLM.Interop;

namespace DeepScaleLM.Native.Cuda;

/// <summary>
/// The op contract on an NVIDIA GPU: the primary context of one device, one stream that every kernel, copy and
/// cuBLAS call runs on in order, the kernels of Native/cuda/ loaded from the embedded PTX, cuBLAS (bound to the
/// stream, with its own workspace) for every matrix product, and a caching device allocator. Results repeat bit
/// for bit run to run: every reduction has a fixed order.
/// </summary>
/// <remarks>
/// <para>Ops are asynchronous: they queue work on the stream and return. <see cref="Backend.Download{T}"/>, the ops
/// that return a number (<see cref="Backend.GlobalNorm"/>, <see cref="Backend.ClipByGlobalNorm"/>,
/// <see cref="Backend.Moments"/>) and the token range checks of the embedding and cross-entropy ops wait for the
/// stream. Any thread may call the backend (the context is made current on it), but one op at a time, as the
/// contract says.</para>
/// <para>Disposal frees every block the backend allocated, those of live tensors included: dispose the backend
/// last. A tensor finalized without being disposed returns its block to the allocator's cache; no finalizer ever
/// calls CUDA.</para>
/// </remarks>
public sealed partial class CudaBackend : Backend
{
    // Threads of element-wise launches, and the most blocks one grid-stride launch uses.
    private const int ElementThreads = 256;
    private const long MaxElementBlocks = 1 << 16;
    private const long BlasWorkspaceBytes = 32L << 20;
    // CUDA_ERROR_NO_DEVICE (cuda.h).
    private const int NoDevice = 100;

    [ThreadStatic] private static nint t_currentContext;

    private readonly Device _device;
    private readonly PrimaryContextHandle _primaryContext;
    private readonly nint _context;
    private readonly StreamHandle _stream;
    private readonly CudaAllocator _allocator = new();
    private readonly CudaKernels _kernels;
    private readonly CuBlasHandle _blas;
    private readonly int _computeType;
    private readonly DeviceWorkspace[] _workspaces;
    private double[] _hostDoubles = new double[2];

    private CudaBackend(int deviceIndex, bool allowTf32)
    {
        _device = Device.Cuda(deviceIndex);
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuDeviceGet(out int device, deviceIndex), nameof(CudaDriver.cuDeviceGet), deviceIndex);
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuDevicePrimaryCtxRetain(out _context, device), nameof(CudaDriver.cuDevicePrimaryCtxRetain), device);
        _primaryContext = new PrimaryContextHandle(_context, device);
        var made = new List<IDisposable>();
        try
        {
            Bind();
            Name = DeviceName(device);
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuDeviceGetAttribute(out int major, CudaDriver.DeviceAttributeComputeCapabilityMajor, device), nameof(CudaDriver.cuDeviceGetAttribute));
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuDeviceGetAttribute(out int minor, CudaDriver.DeviceAttributeComputeCapabilityMinor, device), nameof(CudaDriver.cuDeviceGetAttribute));
            ComputeCapability = new Version(major, minor);
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuStreamCreate(out nint stream, CudaDriver.StreamNonBlocking), nameof(CudaDriver.cuStreamCreate));
            _stream = new StreamHandle(stream, _context);
            made.Add(_stream);
            _kernels = new CudaKernels(_context);
            made.Add(_kernels);
            CudaCheck.Check(CudaLibrary.CuBlas, CuBlas.cublasCreate_v2(out nint blas), nameof(CuBlas.cublasCreate_v2));
            _blas = new CuBlasHandle(blas, _context);
            made.Add(_blas);
            CudaCheck.Check(CudaLibrary.CuBlas, CuBlas.cublasSetStream_v2(blas, stream), nameof(CuBlas.cublasSetStream_v2));
            var (workspace, workspaceBytes) = _allocator.Allocate(BlasWorkspaceBytes);
            CudaCheck.Check(CudaLibrary.CuBlas, CuBlas.cublasSetWorkspace_v2(blas, workspace, (nuint)workspaceBytes), nameof(CuBlas.cublasSetWorkspace_v2));
            // TF32 rounds the GEMM inputs to 10-bit mantissas: faster on tensor cores, but outside fp32 tolerances.
            AllowTf32 = allowTf32;
            _computeType = allowTf32 ? CuBlas.ComputeFloat32FastTf32 : CuBlas.ComputeFloat32;
            _workspaces = [new(_allocator), new(_allocator), new(_allocator), new(_allocator)];
        }
        catch
        {
            for (int i = made.Count - 1; i >= 0; i--) made[i].Dispose();
            _allocator.Dispose();
            _primaryContext.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public override Device Device => _device;

    /// <summary>The GPU's name, as the driver reports it.</summary>
    public string Name { get; }

    /// <summary>The GPU's compute capability (8.0 for A100, 9.0 for H100).</summary>
    public Version ComputeCapability { get; }

    /// <summary>Whether matrix products may round their fp32 inputs to TF32 on tensor cores.</summary>
    public bool AllowTf32 { get; }

    /// <summary>Device memory held by the allocator (live tensors, workspaces and its cache), in bytes.</summary>
    public long ReservedBytes => _allocator.ReservedBytes;

    /// <summary>
    /// Opens device <paramref name="deviceIndex"/>, or says why not: "libcuda.so.1 not found ...", "no CUDA device",
    /// "no CUDA device N", a cuBLAS library that cannot be found, or a PTX the driver cannot JIT-compile.
    /// </summary>
    /// <param name="deviceIndex">The CUDA ordinal (cuda:N).</param>
    /// <param name="backend">The backend, or null on failure.</param>
    /// <param name="reason">Null on success, else one line (or the library search report) naming what is missing.</param>
    /// <param name="allowTf32">Let matrix products use TF32 tensor cores (see <see cref="AllowTf32"/>).</param>
    public static bool TryCreate(int deviceIndex, out CudaBackend? backend, out string? reason, bool allowTf32 = false)
    {
        backend = null;
        if (deviceIndex < 0)
        {
            reason = $"no CUDA device {deviceIndex}: ordinals start at 0";
            return false;
        }
        try
        {
            int result = CudaDriver.cuInit(0);
            if (result == NoDevice)
            {
                reason = "no CUDA device: the driver found no GPU (CUDA_ERROR_NO_DEVICE)";
                return false;
            }
            CudaCheck.Check(CudaLibrary.Driver, result, nameof(CudaDriver.cuInit), 0);
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuDeviceGetCount(out int count), nameof(CudaDriver.cuDeviceGetCount));
            if (deviceIndex >= count)
            {
                reason = count == 0 ? "no CUDA device: the driver found no GPU" : $"no CUDA device {deviceIndex}: the driver found {count} (cuda:0 to cuda:{count - 1})";
                return false;
            }
            backend = new CudaBackend(deviceIndex, allowTf32);
            reason = null;
            return true;
        }
        catch (DllNotFoundException e)
        {
            reason = $"no CUDA device: {e.Message}";
            return false;
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException or InvalidOperationException)
        {
            reason = $"CUDA device {deviceIndex} cannot be used: {e.Message}";
            return false;
        }
    }

    /// <summary>Opens device <paramref name="deviceIndex"/>.</summary>
    /// <exception cref="InvalidOperationException">It cannot be opened; the message says why (see <see cref="TryCreate"/>).</exception>
    public static CudaBackend Create(int deviceIndex = 0, bool allowTf32 = false) =>
        TryCreate(deviceIndex, out var backend, out var reason, allowTf32) ? backend! : throw new InvalidOperationException(reason);

    /// <summary>Waits until every queued op has finished (and surfaces an asynchronous kernel fault as a <see cref="CudaException"/>).</summary>
    public override void Synchronize()
    {
        Bind();
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuStreamSynchronize(Stream), nameof(CudaDriver.cuStreamSynchronize));
    }

    /// <summary>The stream every op runs on (Native/Profiling records its timing events on it).</summary>
    internal nint Stream => _stream.DangerousGetHandle();

    /// <summary>Makes this backend's context current on the calling thread (once per thread and context).</summary>
    internal void Bind()
    {
        if (t_currentContext == _context) return;
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuCtxSetCurrent(_context), nameof(CudaDriver.cuCtxSetCurrent), _context);
        t_currentContext = _context;
    }

    private static unsafe string DeviceName(int device)
    {
        byte* name = stackalloc byte[256];
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuDeviceGetName(name, 256, device), nameof(CudaDriver.cuDeviceGetName), device);
        return Marshal.PtrToStringUTF8((nint)name) ?? $"CUDA device {device}";
    }

    /// <summary>The device address of a tensor's first element.</summary>
    private static ulong Pointer(Tensor tensor) => ((CudaStorage)tensor.Storage).Pointer + (ulong)(tensor.Offset * tensor.DType.SizeInBytes());

    /// <summary><see cref="Pointer(Tensor)"/>, or 0 (a null kernel argument) for a missing optional operand.</summary>
    private static ulong PointerOrNull(Tensor? tensor) => tensor is null ? 0 : Pointer(tensor);

    /// <summary>The address of element <paramref name="elements"/> (float32 or int32) past <paramref name="pointer"/>.</summary>
    private static ulong Offset(ulong pointer, long elements) => pointer + (ulong)(elements * sizeof(float));

    /// <inheritdoc/>
    protected override TensorStorage AllocateStorage(long byteLength)
    {
        Bind();
        var (pointer, blockBytes) = _allocator.Allocate(byteLength);
        var storage = new CudaStorage(_device, byteLength, pointer, blockBytes, _allocator);
        if (byteLength > 0) MemsetWords(pointer, 0, (byteLength + 3) / 4);
        return storage;
    }

    /// <inheritdoc/>
    protected override unsafe void UploadCore<T>(Tensor destination, ReadOnlySpan<T> source)
    {
        if (source.IsEmpty) return;
        Bind();
        fixed (T* host = source)
        {
            nuint bytes = (nuint)((long)source.Length * sizeof(T));
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuMemcpyHtoDAsync_v2(Pointer(destination), host, bytes, Stream), nameof(CudaDriver.cuMemcpyHtoDAsync_v2), bytes);
            // The span is only pinned for this call: wait until the copy has read it.
            Synchronize();
        }
    }

    /// <inheritdoc/>
    protected override unsafe void DownloadCore<T>(Span<T> destination, Tensor source)
    {
        if (destination.IsEmpty) return;
        fixed (T* host = destination) CopyToHost(host, Pointer(source), (long)destination.Length * sizeof(T));
    }

    /// <inheritdoc/>
    protected override void ZeroCore(Tensor tensor)
    {
        Bind();
        if (tensor.ElementCount > 0) MemsetWords(Pointer(tensor), 0, tensor.ElementCount);
    }

    /// <inheritdoc/>
    protected override void CopyCore(Tensor destination, Tensor source)
    {
        if (source.ElementCount == 0) return;
        Bind();
        nuint bytes = (nuint)(source.ElementCount * source.DType.SizeInBytes());
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuMemcpyDtoDAsync_v2(Pointer(destination), Pointer(source), bytes, Stream), nameof(CudaDriver.cuMemcpyDtoDAsync_v2), bytes);
    }

    /// <summary>Copies device bytes to host memory and waits for them.</summary>
    private unsafe void CopyToHost(void* host, ulong device, long bytes)
    {
        Bind();
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuMemcpyDtoHAsync_v2(host, device, (nuint)bytes, Stream), nameof(CudaDriver.cuMemcpyDtoHAsync_v2), bytes);
        Synchronize();
    }

    /// <summary>Sets <paramref name="words"/> 32-bit words from <paramref name="pointer"/> to <paramref name="value"/>.</summary>
    private void MemsetWords(ulong pointer, uint value, long words) =>
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuMemsetD32Async(pointer, value, (nuint)words, Stream), nameof(CudaDriver.cuMemsetD32Async), words);

    /// <summary>Grid size of a grid-stride launch over <paramref name="count"/> elements.</summary>
    private static uint ElementBlocks(long count) => (uint)Math.Clamp((count + ElementThreads - 1) / ElementThreads, 1, MaxElementBlocks);

    /// <summary>Threads of a one-block-per-row kernel over rows of <paramref name="columns"/>: a multiple of 32, at most <paramref name="limit"/>.</summary>
    private static uint RowThreads(long columns, int limit = 256) => (uint)Math.Clamp((columns + 31) / 32 * 32, 32, limit);

    /// <summary>Launches an element-wise kernel over <paramref name="count"/> elements (nothing for 0).</summary>
    private void LaunchElements(nint function, long count, KernelArguments arguments)
    {
        if (count > 0) Launch(function, ElementBlocks(count), 1, ElementThreads, arguments);
    }

    /// <summary>Queues <paramref name="function"/> on the stream with a (gridX, gridY) grid of <paramref name="threads"/>-thread blocks.</summary>
    private unsafe void Launch(nint function, uint gridX, uint gridY, uint threads, KernelArguments arguments)
    {
        Bind();
        Span<ulong> values = KernelArguments.Values(ref arguments);
        void** pointers = stackalloc void*[KernelArguments.Capacity];
        fixed (ulong* first = values)
        {
            for (int i = 0; i < values.Length; i++) pointers[i] = first + i;
            int result = CudaDriver.cuLaunchKernel(function, gridX, gridY, 1, threads, 1, 1, 0, Stream, pointers, null);
            if (result != CudaDriver.Success)
                throw CudaCheck.Failure(CudaLibrary.Driver, result, nameof(CudaDriver.cuLaunchKernel), [KernelName(function), gridX, gridY, threads]);
        }
    }

    /// <summary>The kernel's name for an error message (the property of <see cref="CudaKernels"/> holding it).</summary>
    private string KernelName(nint function) =>
        typeof(CudaKernels).GetProperties().FirstOrDefault(p => p.PropertyType == typeof(nint) && (nint)p.GetValue(_kernels)! == function)?.Name ?? "kernel";

    /// <summary>
    /// Row-major <c>C = alpha op(A) op(B) + beta C</c> for <paramref name="batch"/> matrices at the given element
    /// strides. cuBLAS is column-major, and a row-major matrix is the column-major view of its transpose, so this
    /// asks cuBLAS for <c>C^T = op(B)^T op(A)^T</c>: the operands swap places, and m and n swap.
    /// </summary>
    private unsafe void Gemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ulong a, int lda, long strideA,
        ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch)
    {
        if (m == 0 || n == 0 || batch == 0) return;
        Bind();
        int result = CuBlas.cublasGemmStridedBatchedEx(_blas.DangerousGetHandle(),
            transposeB ? CuBlas.OperationTranspose : CuBlas.OperationNone, transposeA ? CuBlas.OperationTranspose : CuBlas.OperationNone,
            n, m, k, &alpha, b, CuBlas.DataTypeFloat32, Math.Max(1, ldb), strideB, a, CuBlas.DataTypeFloat32, Math.Max(1, lda), strideA,
            &beta, c, CuBlas.DataTypeFloat32, Math.Max(1, ldc), strideC, batch, _computeType, CuBlas.GemmDefault);
        if (result != CuBlas.Success)
            throw CudaCheck.Failure(CudaLibrary.CuBlas, result, nameof(CuBlas.cublasGemmStridedBatchedEx),
                [transposeA, transposeB, m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch]);
    }

    /// <summary>Host scratch of at least <paramref name="count"/> doubles (grow-only).</summary>
    private double[] HostDoubles(int count)
    {
        if (_hostDoubles.Length < count) _hostDoubles = new double[count];
        return _hostDoubles;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        // Work still queued may use the memory about to be freed.
        if (CudaDriver.cuCtxSetCurrent(_context) == CudaDriver.Success)
        {
            t_currentContext = _context;
            CudaDriver.cuStreamSynchronize(Stream);
        }
        _blas.Dispose();
        _kernels.Dispose();
        _allocator.Dispose();
        _stream.Dispose();
        _primaryContext.Dispose();
        t_currentContext = 0;
    }

    /// <summary>A short description, like <c>cuda:0 (NVIDIA H100 80GB HBM3, sm_90)</c>.</summary>
    public override string ToString() =>
        new StringBuilder().Append(_device).Append(" (").Append(Name).Append(", sm_").Append(ComputeCapability.Major).Append(ComputeCapability.Minor).Append(')').ToString();

    /// <summary>A grow-only device buffer for an op's intermediate results (ops run one at a time, so a workspace
    /// is reused by the next op; the stream orders the reuse after the earlier kernels).</summary>
    private sealed class DeviceWorkspace(CudaAllocator allocator)
    {
        private ulong _pointer;
        private long _blockBytes;

        /// <summary>The buffer, grown to at least <paramref name="bytes"/> bytes.</summary>
        public ulong Get(long bytes)
        {
            if (bytes <= _blockBytes && _pointer != 0) return _pointer;
            if (_pointer != 0) allocator.Return(_pointer, _blockBytes);
            (_pointer, _blockBytes) = allocator.Allocate(Math.Max(bytes, 1));
            return _pointer;
        }
    }
}
