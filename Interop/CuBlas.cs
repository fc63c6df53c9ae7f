using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepScaleLM.Interop;

/// <summary>
/// Raw bindings to cuBLAS (libcublas.so.13 or .12, found by <see cref="NativeLibraryResolver"/>): handle, stream,
/// workspace, math mode, and the two GEMMs the backend uses. cuBLAS is column-major. Functions return a
/// <c>cublasStatus_t</c> as <see cref="int"/> (0 is success; pass it to <see cref="CudaCheck"/> with
/// <see cref="CudaLibrary.CuBlas"/>). Device pointers are <see cref="ulong"/>; alpha/beta point at host scalars of
/// the compute type's scale type (float for the 32F compute types) unless the pointer mode says otherwise.
/// cublas_api.h <c>#define</c>s cublasCreate, cublasDestroy, cublasSetStream and cublasSetWorkspace to their _v2
/// symbols, which are bound here.
/// </summary>
public static unsafe partial class CuBlas
{
    /// <summary>The logical library name the resolver maps to libcublas.so.13 / .12.</summary>
    public const string LibraryName = "cublas";

    /// <summary><c>CUBLAS_STATUS_SUCCESS</c>.</summary>
    public const int Success = 0;

    // cublasOperation_t (cublas_api.h).
    /// <summary><c>CUBLAS_OP_N</c> = 0.</summary>
    public const int OperationNone = 0;
    /// <summary><c>CUBLAS_OP_T</c> = 1.</summary>
    public const int OperationTranspose = 1;

    // cublasMath_t (cublas_api.h).
    /// <summary><c>CUBLAS_DEFAULT_MATH</c> = 0.</summary>
    public const int DefaultMath = 0;
    /// <summary><c>CUBLAS_PEDANTIC_MATH</c> = 2.</summary>
    public const int PedanticMath = 2;
    /// <summary><c>CUBLAS_TF32_TENSOR_OP_MATH</c> = 3.</summary>
    public const int Tf32TensorOpMath = 3;
    /// <summary><c>CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION</c> = 16 (a flag, OR-ed with a mode).</summary>
    public const int MathDisallowReducedPrecisionReduction = 16;

    // cudaDataType_t (library_types.h).
    /// <summary><c>CUDA_R_32F</c> = 0.</summary>
    public const int DataTypeFloat32 = 0;
    /// <summary><c>CUDA_R_16F</c> = 2.</summary>
    public const int DataTypeFloat16 = 2;
    /// <summary><c>CUDA_R_16BF</c> = 14.</summary>
    public const int DataTypeBFloat16 = 14;

    // cublasComputeType_t (cublas_api.h).
    /// <summary><c>CUBLAS_COMPUTE_32F</c> = 68: fp32 accumulation (fp16/bf16 inputs use tensor cores).</summary>
    public const int ComputeFloat32 = 68;
    /// <summary><c>CUBLAS_COMPUTE_32F_PEDANTIC</c> = 69.</summary>
    public const int ComputeFloat32Pedantic = 69;
    /// <summary><c>CUBLAS_COMPUTE_32F_FAST_16F</c> = 74.</summary>
    public const int ComputeFloat32Fast16F = 74;
    /// <summary><c>CUBLAS_COMPUTE_32F_FAST_16BF</c> = 75.</summary>
    public const int ComputeFloat32Fast16BF = 75;
    /// <summary><c>CUBLAS_COMPUTE_32F_FAST_TF32</c> = 77: fp32 inputs rounded to TF32, fp32 accumulation.</summary>
    public const int ComputeFloat32FastTf32 = 77;

    // cublasGemmAlgo_t (cublas_api.h).
    /// <summary><c>CUBLAS_GEMM_DEFAULT</c> = -1 (heuristic choice; tensor cores where the types allow).</summary>
    public const int GemmDefault = -1;

    static CuBlas() => NativeLibraryResolver.Register();

    /// <summary><c>cublasStatus_t cublasCreate_v2(cublasHandle_t* handle)</c>; needs a current context.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasCreate_v2(out nint handle);

    /// <summary><c>cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasDestroy_v2(nint handle);

    /// <summary><c>cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasSetStream_v2(nint handle, nint stream);

    /// <summary><c>cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes)</c>;
    /// workspace is device memory.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasSetWorkspace_v2(nint handle, ulong workspace, nuint workspaceBytes);

    /// <summary><c>cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasSetMathMode(nint handle, int mode);

    /// <summary><c>cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
    /// int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
    /// cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
    /// cublasComputeType_t computeType, cublasGemmAlgo_t algo)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasGemmEx(nint handle, int transposeA, int transposeB, int m, int n, int k,
        void* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb,
        void* beta, ulong c, int cType, int ldc, int computeType, int algorithm);

    /// <summary><c>cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
    /// cublasOperation_t transb, int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
    /// long long int strideA, const void* B, cudaDataType Btype, int ldb, long long int strideB, const void* beta,
    /// void* C, cudaDataType Ctype, int ldc, long long int strideC, int batchCount, cublasComputeType_t computeType,
    /// cublasGemmAlgo_t algo)</c>; strides are in elements.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasGemmStridedBatchedEx(nint handle, int transposeA, int transposeB, int m, int n, int k,
        void* alpha, ulong a, int aType, int lda, long strideA, ulong b, int bType, int ldb, long strideB,
        void* beta, ulong c, int cType, int ldc, long strideC, int batchCount, int computeType, int algorithm);
}
