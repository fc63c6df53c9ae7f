namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    // Row chunks of the bias gradient's first pass (a function of the shape only: deterministic).
    private const int MaxBiasChunks = 64;

    /// <inheritdoc/>
    protected override void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias)
    {
        var s = MatMulShape.Of(a, b, transposeA, transposeB);
        Gemm(transposeA, transposeB, s.M, s.N, s.K, alpha, Pointer(a), transposeA ? s.M : s.K, BatchStride(a, s.M, s.K),
            Pointer(b), transposeB ? s.K : s.N, BatchStride(b, s.K, s.N), beta, Pointer(output), s.N, (long)s.M * s.N, s.Batch);
        if (bias is not null)
            LaunchElements(_kernels.BiasAdd, (long)s.Batch * s.M * s.N, new KernelArguments()
                .With(Pointer(output)).With(Pointer(bias)).With((long)s.Batch * s.M).With(s.N));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The four cases of the CPU backend (see CpuBackend.MatMulBackwardCore): <c>dL/d op(A) = alpha G op(B)^T</c>,
    /// <c>dL/d op(B) = alpha op(A)^T G</c>, each accumulated with beta = 1. A shared (rank-2) operand of a batched
    /// product would have cuBLAS's batch entries add into one matrix concurrently, so its gradient runs as one
    /// product per batch entry, queued in batch order (deterministic).
    /// </remarks>
    protected override void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
        bool transposeA, bool transposeB, float alpha)
    {
        var s = MatMulShape.Of(a, b, transposeA, transposeB);
        int m = s.M, n = s.N, k = s.K;
        ulong g = Pointer(gradOutput), pa = Pointer(a), pb = Pointer(b);
        long strideG = (long)m * n, strideA = BatchStride(a, m, k), strideB = BatchStride(b, k, n);
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        if (gradA is not null)
        {
            ulong da = Pointer(gradA);
            int calls = Calls(s.Batch, strideA), count = s.Batch / calls;
            for (int entry = 0; entry < calls; entry++)
            {
                ulong ge = Offset(g, entry * strideG), be = Offset(pb, entry * strideB), ae = Offset(da, entry * strideA);
                if (!transposeA) // gradA [m, k] += alpha * G [m, n] * op(B)^T [n, k]
                    Gemm(false, !transposeB, m, k, n, alpha, ge, n, strideG, be, ldb, strideB, 1f, ae, k, strideA, count);
                else // gradA [k, m] += alpha * op(B) [k, n] * G^T [n, m]
                    Gemm(transposeB, true, k, m, n, alpha, be, ldb, strideB, ge, n, strideG, 1f, ae, m, strideA, count);
            }
        }
        if (gradB is not null)
        {
            ulong db = Pointer(gradB);
            int calls = Calls(s.Batch, strideB), count = s.Batch / calls;
            for (int entry = 0; entry < calls; entry++)
            {
                ulong ge = Offset(g, entry * strideG), ae = Offset(pa, entry * strideA), be = Offset(db, entry * strideB);
                if (!transposeB) // gradB [k, n] += alpha * op(A)^T [k, m] * G [m, n]
                    Gemm(!transposeA, false, k, n, m, alpha, ae, lda, strideA, ge, n, strideG, 1f, be, n, strideB, count);
                else // gradB [n, k] += alpha * G^T [n, m] * op(A) [m, k]
                    Gemm(true, transposeA, n, k, m, alpha, ge, n, strideG, ae, lda, strideA, 1f, be, k, strideB, count);
            }
        }
        if (gradBias is not null) AccumulateBiasGradient(Pointer(gradBias), g, (long)s.Batch * m, n);
    }

    /// <summary>
    /// How many calls a gradient's products take: one strided call over the whole batch when the gradient has its
    /// own matrix per entry, else (a shared operand, stride 0) one call per entry, queued in order.
    /// </summary>
    private static int Calls(int batch, long gradientStride) => gradientStride == 0 ? Math.Max(1, batch) : 1;

    /// <summary>gradBias [n] += the column sums of the [rows, n] gradient: per-chunk partials, then their sum in chunk order.</summary>
    private void AccumulateBiasGradient(ulong gradBias, ulong gradient, long rows, int columns)
    {
        if (rows == 0 || columns == 0) return;
        int chunks = (int)Math.Min(rows, MaxBiasChunks);
        ulong partials = _workspaces[0].Get((long)chunks * columns * sizeof(float));
        Launch(_kernels.ColumnPartialSums, (uint)((columns + ElementThreads - 1) / ElementThreads), (uint)chunks, ElementThreads, new KernelArguments()
            .With(partials).With(gradient).With(rows).With(columns));
        AccumulateColumnSums(gradBias, 0, columns, partials, chunks, columns);
    }

    /// <summary>Elements between consecutive matrices of a batched operand; 0 for a shared rank-2 one.</summary>
    private static long BatchStride(Tensor operand, int rows, int columns) => operand.Rank == 3 ? (long)rows * columns : 0;
}
