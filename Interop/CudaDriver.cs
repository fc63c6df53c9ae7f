using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepScaleLM.Interop;

/// <summary>
/// Raw bindings to the CUDA driver API (libcuda.so.1), only the entry points the CUDA backend uses. Every function
/// returns a <c>CUresult</c> as <see cref="int"/> (0 is success; pass it to <see cref="CudaCheck"/>). Types follow
/// cuda.h on 64-bit Linux: handles (<c>CUcontext</c>, <c>CUstream</c>, <c>CUevent</c>, <c>CUmodule</c>,
/// <c>CUfunction</c>, <c>CUgraph</c>, <c>CUgraphExec</c>, <c>CUmemoryPool</c>) are <see cref="nint"/>,
/// <c>CUdeviceptr</c> is <see cref="ulong"/>, <c>CUdevice</c> is <see cref="int"/>, <c>size_t</c> is
/// <see cref="nuint"/>. Where cuda.h <c>#define</c>s a name to a versioned symbol (<c>cuMemAlloc</c> to
/// <c>cuMemAlloc_v2</c>, <c>cuStreamBeginCapture</c> to <c>cuStreamBeginCapture_v2</c>, ...) the versioned symbol is
/// bound. CUDAAPI is the platform C convention on Linux x64, stated explicitly as Cdecl.
/// </summary>
public static unsafe partial class CudaDriver
{
    /// <summary>The file the dynamic loader is asked for (the NVIDIA driver installs it; no toolkit needed).</summary>
    public const string LibraryName = "libcuda.so.1";

    /// <summary><c>CUDA_SUCCESS</c>.</summary>
    public const int Success = 0;

    // CUdevice_attribute values used by the backend (cuda.h, enum CUdevice_attribute_enum).
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK</c> = 1.</summary>
    public const int DeviceAttributeMaxThreadsPerBlock = 1;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT</c> = 16.</summary>
    public const int DeviceAttributeMultiprocessorCount = 16;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR</c> = 75.</summary>
    public const int DeviceAttributeComputeCapabilityMajor = 75;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR</c> = 76.</summary>
    public const int DeviceAttributeComputeCapabilityMinor = 76;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN</c> = 97.</summary>
    public const int DeviceAttributeMaxSharedMemoryPerBlockOptin = 97;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED</c> = 115.</summary>
    public const int DeviceAttributeMemoryPoolsSupported = 115;

    // CUfunction_attribute (cuda.h, enum CUfunction_attribute_enum).
    /// <summary><c>CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES</c> = 8.</summary>
    public const int FunctionAttributeMaxDynamicSharedSizeBytes = 8;

    // CUstream_flags / CUevent_flags (cuda.h).
    /// <summary><c>CU_STREAM_NON_BLOCKING</c> = 0x1: no implicit synchronization with the legacy NULL stream.</summary>
    public const uint StreamNonBlocking = 0x1;
    /// <summary><c>CU_EVENT_DEFAULT</c> = 0x0 (records timing).</summary>
    public const uint EventDefault = 0x0;
    /// <summary><c>CU_EVENT_DISABLE_TIMING</c> = 0x2.</summary>
    public const uint EventDisableTiming = 0x2;

    // CUstreamCaptureMode (cuda.h, enum CUstreamCaptureMode_enum).
    /// <summary><c>CU_STREAM_CAPTURE_MODE_GLOBAL</c> = 0.</summary>
    public const int StreamCaptureModeGlobal = 0;
    /// <summary><c>CU_STREAM_CAPTURE_MODE_THREAD_LOCAL</c> = 1.</summary>
    public const int StreamCaptureModeThreadLocal = 1;
    /// <summary><c>CU_STREAM_CAPTURE_MODE_RELAXED</c> = 2.</summary>
    public const int StreamCaptureModeRelaxed = 2;

    // CUmemPool_attribute (cuda.h, enum CUmemPool_attribute_enum).
    /// <summary><c>CU_MEMPOOL_ATTR_RELEASE_THRESHOLD</c> = 4 (value: cuuint64_t bytes kept before release to the OS).</summary>
    public const int MemPoolAttributeReleaseThreshold = 4;
    /// <summary><c>CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT</c> = 5 (cuuint64_t).</summary>
    public const int MemPoolAttributeReservedMemCurrent = 5;
    /// <summary><c>CU_MEMPOOL_ATTR_USED_MEM_CURRENT</c> = 7 (cuuint64_t).</summary>
    public const int MemPoolAttributeUsedMemCurrent = 7;

    // CUjit_option (cuda.h, enum CUjit_option_enum).
    /// <summary><c>CU_JIT_INFO_LOG_BUFFER</c> = 3 (char*).</summary>
    public const int JitInfoLogBuffer = 3;
    /// <summary><c>CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES</c> = 4 (unsigned int, in: capacity, out: bytes written).</summary>
    public const int JitInfoLogBufferSizeBytes = 4;
    /// <summary><c>CU_JIT_ERROR_LOG_BUFFER</c> = 5 (char*).</summary>
    public const int JitErrorLogBuffer = 5;
    /// <summary><c>CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES</c> = 6 (unsigned int, in: capacity, out: bytes written).</summary>
    public const int JitErrorLogBufferSizeBytes = 6;
    /// <summary><c>CU_JIT_OPTIMIZATION_LEVEL</c> = 7 (unsigned int 0..4).</summary>
    public const int JitOptimizationLevel = 7;
    /// <summary><c>CU_JIT_LOG_VERBOSE</c> = 12 (int, nonzero for verbose log).</summary>
    public const int JitLogVerbose = 12;
    /// <summary><c>CU_JIT_GENERATE_LINE_INFO</c> = 13 (int, nonzero to keep line info).</summary>
    public const int JitGenerateLineInfo = 13;

    static CudaDriver() => NativeLibraryResolver.Register();

    // ---- initialization, version, devices ----

    /// <summary><c>CUresult cuInit(unsigned int Flags)</c>; Flags must be 0.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuInit(uint flags);

    /// <summary><c>CUresult cuDriverGetVersion(int* driverVersion)</c>, e.g. 12060 for 12.6.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDriverGetVersion(out int driverVersion);

    /// <summary><c>CUresult cuDeviceGetCount(int* count)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDeviceGetCount(out int count);

    /// <summary><c>CUresult cuDeviceGet(CUdevice* device, int ordinal)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDeviceGet(out int device, int ordinal);

    /// <summary><c>CUresult cuDeviceGetName(char* name, int len, CUdevice dev)</c>; NUL-terminated ASCII.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDeviceGetName(byte* name, int length, int device);

    /// <summary><c>CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);

    /// <summary><c>CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDeviceTotalMem_v2(out nuint bytes, int device);

    // ---- primary context ----

    /// <summary><c>CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev)</c>; pair with
    /// <see cref="cuDevicePrimaryCtxRelease_v2"/> (or own it with <see cref="PrimaryContextHandle"/>).</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDevicePrimaryCtxRetain(out nint context, int device);

    /// <summary><c>CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDevicePrimaryCtxRelease_v2(int device);

    /// <summary><c>CUresult cuCtxSetCurrent(CUcontext ctx)</c>: binds the context to the calling thread.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuCtxSetCurrent(nint context);

    /// <summary><c>CUresult cuCtxGetCurrent(CUcontext* pctx)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuCtxGetCurrent(out nint context);

    /// <summary><c>CUresult cuCtxPushCurrent_v2(CUcontext ctx)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuCtxPushCurrent_v2(nint context);

    /// <summary><c>CUresult cuCtxPopCurrent_v2(CUcontext* pctx)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuCtxPopCurrent_v2(out nint context);

    /// <summary><c>CUresult cuCtxSynchronize(void)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuCtxSynchronize();

    // ---- memory ----

    /// <summary><c>CUresult cuMemGetInfo_v2(size_t* free, size_t* total)</c> for the current context's device.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemGetInfo_v2(out nuint free, out nuint total);

    /// <summary><c>CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemAlloc_v2(out ulong devicePointer, nuint byteCount);

    /// <summary><c>CUresult cuMemFree_v2(CUdeviceptr dptr)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemFree_v2(ulong devicePointer);

    /// <summary><c>CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream)</c>: stream-ordered,
    /// from the device's current pool.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemAllocAsync(out ulong devicePointer, nuint byteCount, nint stream);

    /// <summary><c>CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemFreeAsync(ulong devicePointer, nint stream);

    /// <summary><c>CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemAllocFromPoolAsync(out ulong devicePointer, nuint byteCount, nint pool, nint stream);

    /// <summary><c>CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool_out, CUdevice dev)</c>. The default pool
    /// belongs to the device and is never destroyed, so it has no SafeHandle.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuDeviceGetDefaultMemPool(out nint pool, int device);

    /// <summary><c>CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemPoolSetAttribute(nint pool, int attribute, void* value);

    /// <summary><c>CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemPoolGetAttribute(nint pool, int attribute, void* value);

    /// <summary><c>CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemPoolTrimTo(nint pool, nuint minBytesToKeep);

    /// <summary><c>CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream)</c>.
    /// The host memory must stay valid (pinned for true asynchrony) until the stream reaches the copy.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint byteCount, nint stream);

    /// <summary><c>CUresult cuMemcpyDtoHAsync_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint byteCount, nint stream);

    /// <summary><c>CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint byteCount, nint stream);

    /// <summary><c>CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream)</c>;
    /// N counts 32-bit words.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);

    // ---- streams and events ----

    /// <summary><c>CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuStreamCreate(out nint stream, uint flags);

    /// <summary><c>CUresult cuStreamSynchronize(CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuStreamSynchronize(nint stream);

    /// <summary><c>CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuStreamWaitEvent(nint stream, nint @event, uint flags);

    /// <summary><c>CUresult cuStreamDestroy_v2(CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuStreamDestroy_v2(nint stream);

    /// <summary><c>CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuEventCreate(out nint @event, uint flags);

    /// <summary><c>CUresult cuEventRecord(CUevent hEvent, CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuEventRecord(nint @event, nint stream);

    /// <summary><c>CUresult cuEventSynchronize(CUevent hEvent)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuEventSynchronize(nint @event);

    /// <summary><c>CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuEventElapsedTime(out float milliseconds, nint start, nint end);

    /// <summary><c>CUresult cuEventDestroy_v2(CUevent hEvent)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuEventDestroy_v2(nint @event);

    // ---- modules and launch ----

    /// <summary><c>CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
    /// CUjit_option* options, void** optionValues)</c>; image is NUL-terminated PTX text (or a cubin).</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuModuleLoadDataEx(out nint module, void* image, uint optionCount, int* options, void** optionValues);

    /// <summary><c>CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name)</c>.</summary>
    [LibraryImport(LibraryName, StringMarshalling = StringMarshalling.Utf8), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuModuleGetFunction(out nint function, nint module, string name);

    /// <summary><c>CUresult cuModuleUnload(CUmodule hmod)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuModuleUnload(nint module);

    /// <summary><c>CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuFuncSetAttribute(nint function, int attribute, int value);

    /// <summary><c>CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, gridDimY, gridDimZ, blockDimX,
    /// blockDimY, blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void** kernelParams, void** extra)</c>.
    /// kernelParams holds one pointer per kernel parameter, each pointing at the argument's value.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** kernelParameters, void** extra);

    // ---- CUDA graphs ----

    /// <summary><c>CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuStreamBeginCapture_v2(nint stream, int mode);

    /// <summary><c>CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuStreamEndCapture(nint stream, out nint graph);

    /// <summary><c>CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags)</c>
    /// (what cuda.h 12 maps <c>cuGraphInstantiate</c> to).</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuGraphInstantiateWithFlags(out nint graphExec, nint graph, ulong flags);

    /// <summary><c>CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuGraphLaunch(nint graphExec, nint stream);

    /// <summary><c>CUresult cuGraphDestroy(CUgraph hGraph)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuGraphDestroy(nint graph);

    /// <summary><c>CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuGraphExecDestroy(nint graphExec);

    // ---- errors ----

    /// <summary><c>CUresult cuGetErrorName(CUresult error, const char** pStr)</c>; the string is static.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuGetErrorName(int error, out nint name);

    /// <summary><c>CUresult cuGetErrorString(CUresult error, const char** pStr)</c>; the string is static.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cuGetErrorString(int error, out nint description);

    /// <summary>The driver's description of <paramref name="error"/>, or null when libcuda cannot be loaded or does
    /// not know the code. Never throws.</summary>
    public static string? TryGetErrorString(int error)
    {
        try
        {
            return cuGetErrorString(error, out nint text) == Success && text != 0 ? Marshal.PtrToStringUTF8(text) : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
