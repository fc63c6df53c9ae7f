using System.Runtime.InteropServices;

namespace DeepScaleLM.Interop;

/// <summary>
/// Base of the SafeHandles that own CUDA resources. Release is deterministic: the owner disposes the handle on
/// its own thread. If an owner forgets, the finalizer releases it instead, and because the driver API is
/// thread-safe but most destroy calls act on the calling thread's current context, a handle created under a
/// context remembers it and <see cref="ReleaseHandle"/> pushes that context onto the releasing thread
/// (<c>cuCtxPushCurrent_v2</c>), destroys, and pops it again; so the finalizer thread never runs a destroy against
/// whatever context happens to be current there, and never leaves one bound. A failed release returns false
/// (never throws): by then the context may already be gone, which also freed the resource.
/// </summary>
public abstract class CudaHandle : SafeHandle
{
    /// <summary>Wraps an owned native handle; <paramref name="context"/> is the CUcontext to make current while
    /// destroying it, or 0 for handles whose destroy needs none.</summary>
    protected CudaHandle(nint handle, nint context) : base(0, ownsHandle: true)
    {
        SetHandle(handle);
        Context = context;
    }

    /// <summary>The CUcontext this handle was created under (0 if none is needed to release it).</summary>
    public nint Context { get; }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == 0;

    /// <summary>Calls the library's destroy function on <paramref name="handle"/>; returns its status code.</summary>
    protected abstract int Destroy(nint handle);

    /// <inheritdoc/>
    protected sealed override bool ReleaseHandle()
    {
        if (Context == 0) return Destroy(handle) == 0;
        if (CudaDriver.cuCtxPushCurrent_v2(Context) != CudaDriver.Success) return false;
        try
        {
            return Destroy(handle) == 0;
        }
        finally
        {
            CudaDriver.cuCtxPopCurrent_v2(out _);
        }
    }
}

/// <summary>A retained primary context (<c>cuDevicePrimaryCtxRetain</c>), released with
/// <c>cuDevicePrimaryCtxRelease_v2</c>, which needs no current context.</summary>
public sealed class PrimaryContextHandle(nint context, int device) : CudaHandle(context, 0)
{
    /// <summary>The CUdevice whose primary context this is.</summary>
    public int Device { get; } = device;

    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuDevicePrimaryCtxRelease_v2(Device);
}

/// <summary>A CUstream, destroyed with <c>cuStreamDestroy_v2</c>.</summary>
public sealed class StreamHandle(nint stream, nint context) : CudaHandle(stream, context)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuStreamDestroy_v2(handle);
}

/// <summary>A CUevent, destroyed with <c>cuEventDestroy_v2</c>.</summary>
public sealed class EventHandle(nint @event, nint context) : CudaHandle(@event, context)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuEventDestroy_v2(handle);
}

/// <summary>A CUmodule, unloaded with <c>cuModuleUnload</c> (its CUfunctions die with it).</summary>
public sealed class ModuleHandle(nint module, nint context) : CudaHandle(module, context)
{
    private const int JitLogBytes = 16 * 1024;

    /// <summary>
    /// Loads PTX text (or a cubin) into the current context with <c>cuModuleLoadDataEx</c>, capturing the JIT's
    /// error and info logs (<c>CU_JIT_ERROR_LOG_BUFFER</c>, <c>CU_JIT_INFO_LOG_BUFFER</c>, 16 KiB each). A NUL
    /// terminator is added when <paramref name="image"/> lacks one.
    /// </summary>
    /// <param name="image">The PTX or cubin bytes.</param>
    /// <param name="context">The current context, kept for releasing the module.</param>
    /// <param name="infoLog">The JIT's info log (register and spill counts when verbose), possibly empty.</param>
    /// <exception cref="CudaException">The load failed; the message carries the JIT error log.</exception>
    public static unsafe ModuleHandle Load(ReadOnlySpan<byte> image, nint context, out string infoLog)
    {
        byte[]? terminated = image.IsEmpty || image[^1] != 0 ? [.. image, 0] : null;
        byte[] errorLog = new byte[JitLogBytes], infoLogBuffer = new byte[JitLogBytes];
        fixed (byte* source = terminated ?? image, errors = errorLog, infos = infoLogBuffer)
        {
            int* options = stackalloc int[4]
            {
                CudaDriver.JitErrorLogBuffer, CudaDriver.JitErrorLogBufferSizeBytes,
                CudaDriver.JitInfoLogBuffer, CudaDriver.JitInfoLogBufferSizeBytes,
            };
            // Size options are passed by value in the pointer slot; the driver writes back the bytes it filled.
            void** values = stackalloc void*[4] { errors, (void*)(nuint)JitLogBytes, infos, (void*)(nuint)JitLogBytes };
            int result = CudaDriver.cuModuleLoadDataEx(out nint module, source, 4, options, values);
            infoLog = LogText(infoLogBuffer);
            if (result != CudaDriver.Success)
            {
                string errorText = LogText(errorLog);
                throw new CudaException(CudaLibrary.Driver, result, nameof(CudaDriver.cuModuleLoadDataEx), $"{image.Length} bytes",
                    errorText.Length > 0 ? "JIT error log: " + errorText : CudaDriver.TryGetErrorString(result));
            }
            return new ModuleHandle(module, context);
        }
    }

    private static string LogText(byte[] log)
    {
        int length = Array.IndexOf(log, (byte)0);
        return System.Text.Encoding.UTF8.GetString(log, 0, length < 0 ? log.Length : length).Trim();
    }

    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuModuleUnload(handle);
}

/// <summary>
/// Device memory from <c>cuMemAlloc_v2</c>, freed with <c>cuMemFree_v2</c>. Stream-ordered allocations
/// (<c>cuMemAllocAsync</c>) are not wrapped: their free belongs on a stream, which only the owner knows.
/// </summary>
public sealed class DeviceMemoryHandle(ulong devicePointer, nint context) : CudaHandle((nint)devicePointer, context)
{
    /// <summary>The CUdeviceptr.</summary>
    public ulong DevicePointer => (ulong)handle;

    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuMemFree_v2((ulong)handle);
}

/// <summary>A CUgraph, destroyed with <c>cuGraphDestroy</c>.</summary>
public sealed class GraphHandle(nint graph, nint context) : CudaHandle(graph, context)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuGraphDestroy(handle);
}

/// <summary>A CUgraphExec, destroyed with <c>cuGraphExecDestroy</c>.</summary>
public sealed class GraphExecHandle(nint graphExec, nint context) : CudaHandle(graphExec, context)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CudaDriver.cuGraphExecDestroy(handle);
}

/// <summary>A cuBLAS handle, destroyed with <c>cublasDestroy_v2</c> (which synchronizes and frees device
/// workspace, hence the context).</summary>
public sealed class CuBlasHandle(nint cublas, nint context) : CudaHandle(cublas, context)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CuBlas.cublasDestroy_v2(handle);
}

/// <summary>A cuBLASLt handle, destroyed with <c>cublasLtDestroy</c>.</summary>
public sealed class CuBlasLtHandle(nint cublasLt, nint context) : CudaHandle(cublasLt, context)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CuBlasLt.cublasLtDestroy(handle);
}

/// <summary>A cuBLASLt matmul descriptor (host memory only; <c>cublasLtMatmulDescDestroy</c> needs no context).</summary>
public sealed class MatmulDescriptorHandle(nint descriptor) : CudaHandle(descriptor, 0)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CuBlasLt.cublasLtMatmulDescDestroy(handle);
}

/// <summary>A cuBLASLt matrix layout (host memory only; <c>cublasLtMatrixLayoutDestroy</c>).</summary>
public sealed class MatrixLayoutHandle(nint layout) : CudaHandle(layout, 0)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CuBlasLt.cublasLtMatrixLayoutDestroy(handle);
}

/// <summary>A cuBLASLt matmul preference (host memory only; <c>cublasLtMatmulPreferenceDestroy</c>).</summary>
public sealed class MatmulPreferenceHandle(nint preference) : CudaHandle(preference, 0)
{
    /// <inheritdoc/>
    protected override int Destroy(nint handle) => CuBlasLt.cublasLtMatmulPreferenceDestroy(handle);
}
