using DeepScaleLM.Interop;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>
/// Error mapping of the CUDA bindings, without a GPU: the static CUresult / cublasStatus_t name tables against the
/// values in cuda.h (CUDA 12.6) and cublas_api.h, unknown codes, and the message of <see cref="CudaException"/>.
/// </summary>
public sealed class InteropErrorTests
{
    [Theory]
    [InlineData(0, "CUDA_SUCCESS")]
    [InlineData(1, "CUDA_ERROR_INVALID_VALUE")]
    [InlineData(2, "CUDA_ERROR_OUT_OF_MEMORY")]
    [InlineData(3, "CUDA_ERROR_NOT_INITIALIZED")]
    [InlineData(34, "CUDA_ERROR_STUB_LIBRARY")]
    [InlineData(100, "CUDA_ERROR_NO_DEVICE")]
    [InlineData(201, "CUDA_ERROR_INVALID_CONTEXT")]
    [InlineData(209, "CUDA_ERROR_NO_BINARY_FOR_GPU")]
    [InlineData(218, "CUDA_ERROR_INVALID_PTX")]
    [InlineData(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION")]
    [InlineData(400, "CUDA_ERROR_INVALID_HANDLE")]
    [InlineData(500, "CUDA_ERROR_NOT_FOUND")]
    [InlineData(600, "CUDA_ERROR_NOT_READY")]
    [InlineData(700, "CUDA_ERROR_ILLEGAL_ADDRESS")]
    [InlineData(701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES")]
    [InlineData(719, "CUDA_ERROR_LAUNCH_FAILED")]
    [InlineData(801, "CUDA_ERROR_NOT_SUPPORTED")]
    [InlineData(803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH")]
    [InlineData(901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED")]
    [InlineData(916, "CUDA_ERROR_KEY_ROTATION")]
    [InlineData(999, "CUDA_ERROR_UNKNOWN")]
    public void DriverCodesHaveTheirHeaderNames(int code, string name)
    {
        Assert.Equal(name, CudaErrorNames.DriverName(code));
        Assert.Equal(name, CudaErrorNames.Name(CudaLibrary.Driver, code));
    }

    [Theory]
    [InlineData(0, "CUBLAS_STATUS_SUCCESS")]
    [InlineData(1, "CUBLAS_STATUS_NOT_INITIALIZED")]
    [InlineData(3, "CUBLAS_STATUS_ALLOC_FAILED")]
    [InlineData(7, "CUBLAS_STATUS_INVALID_VALUE")]
    [InlineData(8, "CUBLAS_STATUS_ARCH_MISMATCH")]
    [InlineData(11, "CUBLAS_STATUS_MAPPING_ERROR")]
    [InlineData(13, "CUBLAS_STATUS_EXECUTION_FAILED")]
    [InlineData(14, "CUBLAS_STATUS_INTERNAL_ERROR")]
    [InlineData(15, "CUBLAS_STATUS_NOT_SUPPORTED")]
    [InlineData(16, "CUBLAS_STATUS_LICENSE_ERROR")]
    public void CuBlasCodesHaveTheirHeaderNames(int code, string name)
    {
        Assert.Equal(name, CudaErrorNames.CuBlasName(code));
        Assert.Equal(name, CudaErrorNames.Name(CudaLibrary.CuBlas, code));
    }

    [Theory]
    [InlineData(CudaLibrary.Driver, 9, "CUresult(9)")]
    [InlineData(CudaLibrary.Driver, 917, "CUresult(917)")]
    [InlineData(CudaLibrary.Driver, -1, "CUresult(-1)")]
    [InlineData(CudaLibrary.CuBlas, 2, "cublasStatus_t(2)")]
    [InlineData(CudaLibrary.CuBlas, 12345, "cublasStatus_t(12345)")]
    public void UnknownCodesKeepTheirNumber(CudaLibrary library, int code, string name)
    {
        Assert.Equal(name, CudaErrorNames.Name(library, code));
        var error = Assert.Throws<CudaException>(() => CudaCheck.Check(library, code, "someCall"));
        Assert.Equal(name, error.ErrorName);
        Assert.Contains(name, error.Message);
    }

    [Fact]
    public void DriverFailureNamesTheErrorTheCallAndItsArguments()
    {
        var error = Assert.Throws<CudaException>(() =>
            CudaCheck.Check(CudaLibrary.Driver, 2, "cuMemAlloc_v2", (nuint)1073741824));
        Assert.Equal(CudaLibrary.Driver, error.Library);
        Assert.Equal(2, error.Code);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", error.ErrorName);
        Assert.Equal("cuMemAlloc_v2", error.Call);
        Assert.Equal("1073741824", error.Arguments);
        // No libcuda here, so no driver description is appended; with one, it follows after ": ".
        Assert.StartsWith("cuMemAlloc_v2(1073741824) failed with CUDA_ERROR_OUT_OF_MEMORY (2)", error.Message);
    }

    [Fact]
    public void CuBlasFailureNamesTheErrorTheCallAndItsArguments()
    {
        var error = Assert.Throws<CudaException>(() =>
            CudaCheck.Check(CudaLibrary.CuBlas, 15, "cublasGemmEx", new IntPtr(0x7f00dead0000L), 768, -1.5f, "T"));
        Assert.Equal("CUBLAS_STATUS_NOT_SUPPORTED", error.ErrorName);
        Assert.Equal("cublasGemmEx(0x7f00dead0000, 768, -1.5, \"T\") failed with CUBLAS_STATUS_NOT_SUPPORTED (15)", error.Message);
    }

    [Fact]
    public void CallsWithManyArgumentsListThemAll()
    {
        var error = Assert.Throws<CudaException>(() =>
            CudaCheck.Check(CudaLibrary.Driver, 701, "cuLaunchKernel", 128u, 1u, 1u, 256u, 1u, 1u, 49152u, null));
        Assert.Equal("128, 1, 1, 256, 1, 1, 49152, null", error.Arguments);
        Assert.Contains("cuLaunchKernel(128, 1, 1, 256, 1, 1, 49152, null) failed with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (701)", error.Message);
    }

    [Fact]
    public void SuccessDoesNotThrowOrAllocate()
    {
        Allocations.AssertWarmCallAllocatesNothing(() =>
        {
            CudaCheck.Check(CudaLibrary.Driver, 0, "cuStreamSynchronize");
            CudaCheck.Check(CudaLibrary.Driver, 0, "cuMemAlloc_v2", (nuint)4096);
            CudaCheck.Check(CudaLibrary.Driver, 0, "cuMemcpyHtoDAsync_v2", 0x1000UL, (nuint)64, (nint)0);
            CudaCheck.Check(CudaLibrary.CuBlas, 0, "cublasSetStream_v2", (nint)1, (nint)2);
            CudaCheck.Check(CudaLibrary.CuBlas, 0, "cublasGemmEx", 1, 2, 3, 4);
        });
    }
}
