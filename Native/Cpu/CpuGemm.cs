namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// Single-precision GEMM on row-major matrices, BLAS-style:
/// <c>C[m, n] = alpha * op(A) * op(B) + beta * C</c> with leading dimensions (row strides) lda, ldb, ldc.
/// With beta = 0, C is not read (NaN there is overwritten).
/// </summary>
internal sealed unsafe class CpuGemm
{
    private readonly WorkerPool _pool;

    public CpuGemm(WorkerPool pool) => _pool = pool;

    /// <summary>Multi-threaded GEMM across the pool.</summary>
    public void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => MultiplySerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>Single-threaded GEMM on the calling thread; safe to call concurrently from pool jobs and allocation-free.</summary>
    public static void MultiplySerial(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        // Placeholder reference loop (correct, slow): replaced by the packed microkernel GEMM.
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                    sum += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                float* cij = c + (long)i * ldc + j;
                *cij = beta == 0f ? alpha * sum : alpha * sum + beta * *cij;
            }
    }
}
