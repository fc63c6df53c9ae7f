using System.Numerics.Tensors;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>Below this many output elements the bias add and bias gradient run on one thread.</summary>
    private const long ParallelBiasElements = 1L << 16;

    /// <inheritdoc/>
    protected override unsafe void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias)
    {
        var s = MatMulShape.Of(a, b, transposeA, transposeB);
        _gemm.MultiplyBatched(s.Batch, transposeA, transposeB, s.M, s.N, s.K, alpha,
            Floats(a), transposeA ? s.M : s.K, BatchStride(a, s.M, s.K),
            Floats(b), transposeB ? s.K : s.N, BatchStride(b, s.K, s.N),
            beta, Floats(output), s.N, (long)s.M * s.N);
        if (bias is not null) RunOverColumns(new BiasJob(Floats(output), Floats(bias), (long)s.Batch * s.M, s.N, gradient: false));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// With G = gradOutput and the forward <c>C = alpha * op(A) op(B)</c>: <c>dL/d op(A) = alpha * G op(B)^T</c> and
    /// <c>dL/d op(B) = alpha * op(A)^T G</c>. A stored transposed receives the transpose of its op's gradient,
    /// which gives the four cases below; every product accumulates with beta = 1, and a shared (rank-2)
    /// operand's gradient has stride 0, so the batch's products sum into it.
    /// </remarks>
    protected override unsafe void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha)
    {
        var s = MatMulShape.Of(a, b, transposeA, transposeB);
        int m = s.M, n = s.N, k = s.K;
        float* g = Floats(gradOutput), pa = Floats(a), pb = Floats(b);
        long strideG = (long)m * n, strideA = BatchStride(a, m, k), strideB = BatchStride(b, k, n);
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        if (gradA is not null)
        {
            if (!transposeA) // gradA [m, k] += alpha * G [m, n] * op(B)^T [n, k]
                _gemm.MultiplyBatched(s.Batch, false, !transposeB, m, k, n, alpha, g, n, strideG, pb, ldb, strideB, 1f, Floats(gradA), k, strideA);
            else // gradA [k, m] += alpha * op(B) [k, n] * G^T [n, m]
                _gemm.MultiplyBatched(s.Batch, transposeB, true, k, m, n, alpha, pb, ldb, strideB, g, n, strideG, 1f, Floats(gradA), m, strideA);
        }
        if (gradB is not null)
        {
            if (!transposeB) // gradB [k, n] += alpha * op(A)^T [k, m] * G [m, n]
                _gemm.MultiplyBatched(s.Batch, !transposeA, false, k, n, m, alpha, pa, lda, strideA, g, n, strideG, 1f, Floats(gradB), n, strideB);
            else // gradB [n, k] += alpha * G^T [n, m] * op(A) [m, k]
                _gemm.MultiplyBatched(s.Batch, true, transposeA, n, k, m, alpha, g, n, strideG, pa, lda, strideA, 1f, Floats(gradB), k, strideB);
        }
        if (gradBias is not null) RunOverColumns(new BiasJob(g, Floats(gradBias), (long)s.Batch * m, n, gradient: true));
    }

    /// <summary>Floats between consecutive matrices of a batched operand; 0 for a shared rank-2 one.</summary>
    private static long BatchStride(Tensor operand, int rows, int columns) => operand.Rank == 3 ? (long)rows * columns : 0;

    /// <summary>Runs a bias job on one thread for small outputs, else one band of columns per pool thread.</summary>
    private void RunOverColumns(BiasJob job)
    {
        if (job.Elements < ParallelBiasElements || _pool.ThreadCount == 1) job.Execute(0);
        else
        {
            job = job.Split(_pool.ThreadCount);
            _pool.For(job.Parts, ref job);
        }
    }

    /// <summary>
    /// Adds bias [n] to every row of a [rows, n] matrix, or (as a gradient) adds the column sums of the matrix to
    /// bias. Part i of the job owns a band of columns for all rows, so parts never write the same element.
    /// </summary>
    private readonly unsafe struct BiasJob(float* matrix, float* bias, long rows, int columns, bool gradient, int parts = 1) : IParallelJob
    {
        public long Elements => rows * columns;

        public int Parts => parts;

        /// <summary>The same job cut into up to <paramref name="count"/> bands of columns.</summary>
        public BiasJob Split(int count) => new(matrix, bias, rows, columns, gradient, Math.Min(count, columns));

        public void Execute(int index)
        {
            var (start, end) = WorkerPool.Partition(index, parts, columns);
            var band = new Span<float>(bias + start, end - start);
            for (long r = 0; r < rows; r++)
            {
                var row = new Span<float>(matrix + r * columns + start, end - start);
                if (gradient) TensorPrimitives.Add(band, row, band);
                else TensorPrimitives.Add(row, band, row);
            }
        }
    }
}
