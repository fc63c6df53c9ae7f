using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepScaleLM.Interop;

/// <summary>
/// Raw bindings to cuBLASLt (libcublasLt.so.13 or .12, found by <see cref="NativeLibraryResolver"/>): the handle,
/// matmul / matrix-layout / preference descriptors, the algorithm heuristic and <c>cublasLtMatmul</c> with its bias
/// and GeLU epilogues. Returns <c>cublasStatus_t</c> as <see cref="int"/>. Enum values are from cublasLt.h
/// (<c>cublasLtEpilogue_t</c>, <c>cublasLtMatmulDescAttributes_t</c>, <c>cublasLtMatrixLayoutAttribute_t</c>,
/// <c>cublasLtMatmulPreferenceAttributes_t</c>, <c>cublasLtOrder_t</c>); data and compute types are the ones on
/// <see cref="CuBlas"/>.
/// </summary>
public static unsafe partial class CuBlasLt
{
    /// <summary>The logical library name the resolver maps to libcublasLt.so.13 / .12.</summary>
    public const string LibraryName = "cublasLt";

    // cublasLtEpilogue_t.
    /// <summary><c>CUBLASLT_EPILOGUE_DEFAULT</c> = 1.</summary>
    public const uint EpilogueDefault = 1;
    /// <summary><c>CUBLASLT_EPILOGUE_RELU</c> = 2.</summary>
    public const uint EpilogueRelu = 2;
    /// <summary><c>CUBLASLT_EPILOGUE_BIAS</c> = 4: adds the bias vector (length = rows of D) to every column.</summary>
    public const uint EpilogueBias = 4;
    /// <summary><c>CUBLASLT_EPILOGUE_GELU</c> = 32.</summary>
    public const uint EpilogueGelu = 32;
    /// <summary><c>CUBLASLT_EPILOGUE_GELU_BIAS</c> = GELU | BIAS = 36: bias, then GeLU.</summary>
    public const uint EpilogueGeluBias = 36;
    /// <summary><c>CUBLASLT_EPILOGUE_GELU_AUX</c> = GELU | 128 = 160: also stores the GeLU input in the aux buffer.</summary>
    public const uint EpilogueGeluAux = 160;
    /// <summary><c>CUBLASLT_EPILOGUE_GELU_AUX_BIAS</c> = GELU_AUX | BIAS = 164.</summary>
    public const uint EpilogueGeluAuxBias = 164;
    /// <summary><c>CUBLASLT_EPILOGUE_DGELU</c> = 64 | 128 = 192: GeLU gradient from the aux input.</summary>
    public const uint EpilogueDGelu = 192;
    /// <summary><c>CUBLASLT_EPILOGUE_DGELU_BGRAD</c> = DGELU | 16 = 208: GeLU gradient and bias gradient.</summary>
    public const uint EpilogueDGeluBGrad = 208;
    /// <summary><c>CUBLASLT_EPILOGUE_BGRADA</c> = 256: bias gradient reduced from A over k.</summary>
    public const uint EpilogueBGradA = 256;
    /// <summary><c>CUBLASLT_EPILOGUE_BGRADB</c> = 512: bias gradient reduced from B over k.</summary>
    public const uint EpilogueBGradB = 512;

    // cublasLtMatmulDescAttributes_t.
    /// <summary><c>CUBLASLT_MATMUL_DESC_COMPUTE_TYPE</c> = 0 (int32).</summary>
    public const int MatmulDescComputeType = 0;
    /// <summary><c>CUBLASLT_MATMUL_DESC_SCALE_TYPE</c> = 1 (int32).</summary>
    public const int MatmulDescScaleType = 1;
    /// <summary><c>CUBLASLT_MATMUL_DESC_POINTER_MODE</c> = 2 (int32).</summary>
    public const int MatmulDescPointerMode = 2;
    /// <summary><c>CUBLASLT_MATMUL_DESC_TRANSA</c> = 3 (int32 cublasOperation_t).</summary>
    public const int MatmulDescTransposeA = 3;
    /// <summary><c>CUBLASLT_MATMUL_DESC_TRANSB</c> = 4 (int32 cublasOperation_t).</summary>
    public const int MatmulDescTransposeB = 4;
    /// <summary><c>CUBLASLT_MATMUL_DESC_EPILOGUE</c> = 7 (uint32 cublasLtEpilogue_t).</summary>
    public const int MatmulDescEpilogue = 7;
    /// <summary><c>CUBLASLT_MATMUL_DESC_BIAS_POINTER</c> = 8 (device pointer).</summary>
    public const int MatmulDescBiasPointer = 8;
    /// <summary><c>CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE</c> = 10 (int64).</summary>
    public const int MatmulDescBiasBatchStride = 10;
    /// <summary><c>CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER</c> = 11 (device pointer).</summary>
    public const int MatmulDescEpilogueAuxPointer = 11;
    /// <summary><c>CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD</c> = 12 (int64).</summary>
    public const int MatmulDescEpilogueAuxLeadingDimension = 12;
    /// <summary><c>CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE</c> = 13 (int64).</summary>
    public const int MatmulDescEpilogueAuxBatchStride = 13;

    // cublasLtMatrixLayoutAttribute_t and cublasLtOrder_t.
    /// <summary><c>CUBLASLT_MATRIX_LAYOUT_ORDER</c> = 1 (int32 cublasLtOrder_t).</summary>
    public const int MatrixLayoutOrder = 1;
    /// <summary><c>CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT</c> = 5 (int32).</summary>
    public const int MatrixLayoutBatchCount = 5;
    /// <summary><c>CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET</c> = 6 (int64, elements).</summary>
    public const int MatrixLayoutStridedBatchOffset = 6;
    /// <summary><c>CUBLASLT_ORDER_COL</c> = 0.</summary>
    public const int OrderColumn = 0;
    /// <summary><c>CUBLASLT_ORDER_ROW</c> = 1.</summary>
    public const int OrderRow = 1;

    // cublasLtMatmulPreferenceAttributes_t.
    /// <summary><c>CUBLASLT_MATMUL_PREF_SEARCH_MODE</c> = 0 (uint32).</summary>
    public const int PreferenceSearchMode = 0;
    /// <summary><c>CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES</c> = 1 (uint64).</summary>
    public const int PreferenceMaxWorkspaceBytes = 1;

    static CuBlasLt() => NativeLibraryResolver.Register();

    /// <summary><c>cublasStatus_t cublasLtCreate(cublasLtHandle_t* lightHandle)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtCreate(out nint handle);

    /// <summary><c>cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtDestroy(nint handle);

    /// <summary><c>cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* matmulDesc, cublasComputeType_t computeType, cudaDataType_t scaleType)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulDescCreate(out nint matmulDescriptor, int computeType, int scaleType);

    /// <summary><c>cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc, cublasLtMatmulDescAttributes_t attr, const void* buf, size_t sizeInBytes)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulDescSetAttribute(nint matmulDescriptor, int attribute, void* value, nuint valueBytes);

    /// <summary><c>cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulDescDestroy(nint matmulDescriptor);

    /// <summary><c>cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* matLayout, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatrixLayoutCreate(out nint layout, int dataType, ulong rows, ulong columns, long leadingDimension);

    /// <summary><c>cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout, cublasLtMatrixLayoutAttribute_t attr, const void* buf, size_t sizeInBytes)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatrixLayoutSetAttribute(nint layout, int attribute, void* value, nuint valueBytes);

    /// <summary><c>cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatrixLayoutDestroy(nint layout);

    /// <summary><c>cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulPreferenceCreate(out nint preference);

    /// <summary><c>cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void* buf, size_t sizeInBytes)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulPreferenceSetAttribute(nint preference, int attribute, void* value, nuint valueBytes);

    /// <summary><c>cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulPreferenceDestroy(nint preference);

    /// <summary><c>cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
    /// cublasLtMatrixLayout_t Adesc, Bdesc, Cdesc, Ddesc, cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    /// cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmulAlgoGetHeuristic(nint handle, nint matmulDescriptor, nint aLayout, nint bLayout,
        nint cLayout, nint dLayout, nint preference, int requestedCount, MatmulHeuristicResult* results, out int returnedCount);

    /// <summary><c>cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc, const void* alpha,
    /// const void* A, cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
    /// const void* C, cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo,
    /// void* workspace, size_t workspaceSizeInBytes, cudaStream_t stream)</c>; algo may be null (heuristic inside).</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int cublasLtMatmul(nint handle, nint matmulDescriptor, void* alpha, ulong a, nint aLayout,
        ulong b, nint bLayout, void* beta, ulong c, nint cLayout, ulong d, nint dLayout, MatmulAlgorithm* algorithm,
        ulong workspace, nuint workspaceBytes, nint stream);
}

/// <summary><c>cublasLtMatmulAlgo_t</c>: <c>struct { uint64_t data[8]; }</c>, opaque.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct MatmulAlgorithm
{
    /// <summary>The opaque words.</summary>
    public fixed ulong Data[8];
}

/// <summary><c>cublasLtMatmulHeuristicResult_t</c> (cublasLt.h): algo, workspaceSize, state, wavesCount, int reserved[4].</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct MatmulHeuristicResult
{
    /// <summary>The configured algorithm, valid when <see cref="State"/> is success.</summary>
    public MatmulAlgorithm Algorithm;
    /// <summary>Workspace bytes the algorithm needs.</summary>
    public nuint WorkspaceSize;
    /// <summary>cublasStatus_t of this result.</summary>
    public int State;
    /// <summary>Device utilization estimate (1.0 fills the GPU once).</summary>
    public float WavesCount;
    /// <summary>Reserved.</summary>
    public fixed int Reserved[4];
}
