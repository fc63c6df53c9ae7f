using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

/// <summary>The microkernel family a GEMM runs on.</summary>
internal enum GemmPath
{
    /// <summary>Plain scalar loops: correct anywhere.</summary>
    Scalar,
    /// <summary>256-bit vectors (AVX2 + FMA, or whatever Vector256 maps to).</summary>
    Vector256,
    /// <summary>512-bit vectors (AVX-512).</summary>
    Vector512,
}

/// <summary>
/// Single-precision GEMM on row-major matrices, BLAS-style:
/// <c>C[m, n] = alpha * op(A) * op(B) + beta * C</c> with leading dimensions (row strides) lda, ldb, ldc.
/// With beta = 0, C is not read (NaN there is overwritten).
/// </summary>
/// <remarks>
/// <para>Goto/BLIS structure. C is computed a band of columns at a time: the band's op(B) (all of k, as many columns as fit 16 MiB)
/// is packed once into NR-wide panels of KC steps, then the band is cut into chunks of rows (and, for short
/// matrices, of columns); each chunk packs its rows of op(A) into MR-high panels, KC steps at a time, and the
/// MR x NR microkernel sweeps them against the B panels. Transposes are absorbed by the packing, so one kernel
/// serves all four combinations.</para>
/// <para>Threads: the band's B panels are packed in parallel, then the chunks are handed out dynamically by the
/// pool, several per thread, so a thread slowed by another process on its core takes fewer of them. Every
/// chunk owns disjoint tiles of C, so no two threads write the same element.</para>
/// <para>Workspaces are per thread ([ThreadStatic], grow-only): a thread allocates its packing buffers on its
/// first GEMM and reuses them after. Because no buffer is shared between calls, <see cref="MultiplySerial"/> is
/// safe from concurrent pool jobs, and <see cref="Multiply"/> stays correct when the pool runs it serially
/// (nested in a pool job, or raced by another thread).</para>
/// </remarks>
internal sealed unsafe class CpuGemm
{
    /// <summary>
    /// Below this many multiply-adds (m*n*k) a GEMM runs on one thread: on 2 Zen 5 cores 96^3 gained nothing from
    /// the second thread and 128x64x128 (2^20) gained a third.
    /// </summary>
    private const long ParallelThreshold = 1L << 20;
    /// <summary>Chunks per thread: enough for the dynamic hand-out to even out an unevenly loaded machine.</summary>
    private const int ChunksPerThread = 4;
    /// <summary>Largest packed B band (floats, 16 MiB): bounds the workspace while keeping a band in L3.</summary>
    private const long BandFloats = 1L << 22;
    /// <summary>A band smaller than this (floats) is packed by the calling thread alone.</summary>
    private const long ParallelPackFloats = 1L << 17;

    [ThreadStatic] private static GemmWorkspace? t_workspace;

    private readonly WorkerPool _pool;

    /// <summary>A GEMM that splits its work across <paramref name="pool"/>.</summary>
    public CpuGemm(WorkerPool pool) => _pool = pool;

    /// <summary>The fastest microkernel this machine accelerates.</summary>
    public static GemmPath BestPath { get; } =
        Vector512.IsHardwareAccelerated ? GemmPath.Vector512 :
        Vector256.IsHardwareAccelerated ? GemmPath.Vector256 : GemmPath.Scalar;

    /// <summary>Multi-threaded GEMM across the pool; allocation-free once each pool thread has its packing buffers.</summary>
    public void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => Run(BestPath, new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), _pool);

    /// <summary>Single-threaded GEMM on the calling thread; safe to call concurrently from pool jobs and allocation-free.</summary>
    public static void MultiplySerial(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => Run(BestPath, new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), null);

    /// <summary>
    /// A batch of GEMMs, <c>C_i = alpha * op(A_i) * op(B_i) + beta * C_i</c> for i in [0, batch), where operand i
    /// starts <c>i * stride</c> floats after the first. A stride of 0 shares one matrix across the batch; a C
    /// stride of 0 sums every product into the one C (beta applies once), as a shared weight's gradient needs.
    /// </summary>
    public void MultiplyBatched(int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float beta, float* c, int ldc, long strideC)
    {
        if (batch <= 0) return;
        long rows = (long)batch * m, depth = (long)batch * k;
        if (batch == 1)
            Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        // A shared B with A and C stacked row after row is one GEMM over all the rows (a Linear layer).
        else if (strideB == 0 && !transA && strideA == (long)m * lda && strideC == (long)m * ldc && rows <= int.MaxValue)
            Multiply(false, transB, (int)rows, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        // A sum of products whose op(A) columns and op(B) rows stack in memory is one GEMM over the stacked depth
        // (a shared weight's gradient).
        else if (strideC == 0 && transA && strideA == (long)k * lda && !transB && strideB == (long)k * ldb && depth <= int.MaxValue)
            Multiply(true, false, m, n, (int)depth, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (strideC == 0)
            for (int i = 0; i < batch; i++)
                Multiply(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, i == 0 ? beta : 1f, c, ldc);
        // Products too small to split are spread over the pool whole, one per job.
        else if ((long)m * n * k < ParallelThreshold)
        {
            var job = new BatchJob(new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), strideA, strideB, strideC);
            _pool.For(batch, ref job);
        }
        else
            for (int i = 0; i < batch; i++)
                Multiply(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, c + i * strideC, ldc);
    }

    /// <summary>A GEMM on a chosen kernel family (tests cover every family on one machine); serial when <paramref name="pool"/> is null.</summary>
    internal static void Run(GemmPath path, in Problem problem, WorkerPool? pool)
    {
        switch (path)
        {
            case GemmPath.Vector512: Run<Vector512Kernel>(problem, pool); break;
            case GemmPath.Vector256: Run<Vector256Kernel>(problem, pool); break;
            default: Run<ScalarKernel>(problem, pool); break;
        }
    }

    private static void Run<TKernel>(in Problem p, WorkerPool? pool) where TKernel : IGemmKernel
    {
        int m = p.M, n = p.N, k = p.K, nr = TKernel.NR;
        if (m == 0 || n == 0) return;
        if (k == 0 || p.Alpha == 0f)
        {
            // The product is zero: BLAS leaves beta * C without touching A or B.
            Scale(p.C, p.Ldc, m, n, p.Beta);
            return;
        }
        int threads = pool is null || (long)m * n * k < ParallelThreshold ? 1 : pool.ThreadCount;
        int bands = (int)Math.Min((long)k * RoundUp(n, nr) / BandFloats + 1, (n + nr - 1) / nr);
        int width = RoundUp((n + bands - 1) / bands, nr);
        var workspace = t_workspace ??= new GemmWorkspace();
        float* packedB = workspace.ReserveB((long)k * width);
        for (int column = 0; column < n; column += width)
        {
            var band = new Band<TKernel>(p, column, Math.Min(width, n - column), packedB, threads);
            var pack = new PackJob<TKernel>(band);
            var compute = new ChunkJob<TKernel>(band);
            if (threads > 1 && (long)k * band.Width >= ParallelPackFloats) pool!.For(band.PackItems, ref pack);
            else for (int i = 0; i < band.PackItems; i++) pack.Execute(i);
            if (threads > 1) pool!.For(band.Chunks, ref compute);
            else for (int i = 0; i < band.Chunks; i++) compute.Execute(i);
        }
    }

    /// <summary>
    /// One band of C's columns: its packed op(B) (for each KC block of depth, panels of NR columns) and its cut into
    /// chunks of rows x columns that threads compute independently.
    /// </summary>
    private readonly struct Band<TKernel> where TKernel : IGemmKernel
    {
        private readonly Problem _p;
        private readonly float* _packedB;
        private readonly int _column, _paddedWidth, _chunkRows, _chunkColumns, _columnChunks, _depthBlocks;

        public Band(in Problem p, int column, int width, float* packedB, int threads)
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            _p = p;
            _packedB = packedB;
            _column = column;
            Width = width;
            _paddedWidth = RoundUp(width, nr);
            _depthBlocks = (p.K + TKernel.KC - 1) / TKernel.KC;
            // One thread: the largest A block that stays in L2. Several: about ChunksPerThread chunks each, cut
            // along rows (each chunk then packs only its own rows of A); when there are too few rows, also along
            // columns (the chunks of a row band then each pack the same rows of A, which is cheap for few rows).
            int target = threads == 1 ? 1 : threads * ChunksPerThread;
            _chunkRows = Math.Min(TKernel.MC, Math.Max(RoundUp((p.M + target - 1) / target, mr), 4 * mr));
            int rowChunks = (p.M + _chunkRows - 1) / _chunkRows;
            int columnChunks = Math.Min((target + rowChunks - 1) / rowChunks, _paddedWidth / nr);
            _chunkColumns = RoundUp((width + columnChunks - 1) / columnChunks, nr);
            _columnChunks = (width + _chunkColumns - 1) / _chunkColumns;
            Chunks = rowChunks * _columnChunks;
        }

        /// <summary>Columns of C in this band.</summary>
        public int Width { get; }

        /// <summary>Independent pieces of packing: one per depth block and column chunk.</summary>
        public int PackItems => _depthBlocks * _columnChunks;

        /// <summary>Independent pieces of C.</summary>
        public int Chunks { get; }

        /// <summary>Packs op(B) for one depth block and one column chunk.</summary>
        public void PackB(int item)
        {
            int depth = item / _columnChunks * TKernel.KC, first = item % _columnChunks * _chunkColumns;
            int kc = Math.Min(TKernel.KC, _p.K - depth), columns = Math.Min(_chunkColumns, Width - first);
            GemmPacking.Pack(!_p.TransB, GemmPacking.At(_p.TransB, _p.B, _p.Ldb, depth, _column + first), _p.Ldb,
                columns, kc, TKernel.NR, _packedB + (long)depth * _paddedWidth + (long)first * kc, TKernel.Avx512Packing);
        }

        /// <summary>Computes one chunk of C: packs its rows of op(A) a depth block at a time and runs the microkernel over its tiles.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Compute(int chunk)
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int row = chunk / _columnChunks * _chunkRows, first = chunk % _columnChunks * _chunkColumns;
            int rows = Math.Min(_chunkRows, _p.M - row), columns = Math.Min(_chunkColumns, Width - first);
            var workspace = t_workspace ??= new GemmWorkspace();
            float* packedA = workspace.ReserveA((long)RoundUp(rows, mr) * Math.Min(_p.K, TKernel.KC));
            float* edge = stackalloc float[mr * nr];
            float* c = _p.C + (long)row * _p.Ldc + _column + first;
            for (int depth = 0; depth < _p.K; depth += TKernel.KC)
            {
                int kc = Math.Min(TKernel.KC, _p.K - depth);
                // The first depth block applies the caller's beta; later ones add to what it wrote.
                float beta = depth == 0 ? _p.Beta : 1f;
                GemmPacking.Pack(_p.TransA, GemmPacking.At(_p.TransA, _p.A, _p.Lda, row, depth), _p.Lda, rows, kc, mr, packedA, TKernel.Avx512Packing);
                float* packedB = _packedB + (long)depth * _paddedWidth + (long)first * kc;
                // B micro-panel outer, A micro-panel inner: the B panel (KC x NR) stays in L1 while the A block streams from L2.
                for (int j = 0; j < columns; j += nr)
                {
                    float* panelB = packedB + (long)j * kc;
                    int cols = Math.Min(nr, columns - j);
                    for (int i = 0; i < rows; i += mr)
                    {
                        float* panelA = packedA + (long)i * kc;
                        float* tile = c + (long)i * _p.Ldc + j;
                        int tileRows = Math.Min(mr, rows - i);
                        if (tileRows == mr && cols == nr)
                            TKernel.Run(kc, panelA, panelB, tile, _p.Ldc, _p.Alpha, beta);
                        else
                        {
                            TKernel.Run(kc, panelA, panelB, edge, nr, _p.Alpha, 0f);
                            WriteEdge(edge, nr, tile, _p.Ldc, tileRows, cols, beta);
                        }
                    }
                }
            }
        }
    }

    /// <summary>One whole product of a batch per pool job.</summary>
    private readonly struct BatchJob(Problem first, long strideA, long strideB, long strideC) : IParallelJob
    {
        public void Execute(int index) => MultiplySerial(first.TransA, first.TransB, first.M, first.N, first.K, first.Alpha,
            first.A + index * strideA, first.Lda, first.B + index * strideB, first.Ldb, first.Beta, first.C + index * strideC, first.Ldc);
    }

    private readonly struct PackJob<TKernel>(Band<TKernel> band) : IParallelJob where TKernel : IGemmKernel
    {
        public void Execute(int index) => band.PackB(index);
    }

    private readonly struct ChunkJob<TKernel>(Band<TKernel> band) : IParallelJob where TKernel : IGemmKernel
    {
        public void Execute(int index) => band.Compute(index);
    }

    /// <summary>Adds the valid rows x cols corner of a full tile computed aside into C (not reading C when beta = 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WriteEdge(float* tile, int ldt, float* c, int ldc, int rows, int cols, float beta)
    {
        for (int r = 0; r < rows; r++, tile += ldt, c += ldc)
            for (int j = 0; j < cols; j++)
                c[j] = beta == 0f ? tile[j] : tile[j] + beta * c[j];
    }

    /// <summary>C = beta * C, writing zeros without reading when beta = 0.</summary>
    private static void Scale(float* c, int ldc, int m, int n, float beta)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else TensorPrimitives.Multiply(row, beta, row);
        }
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>The operands of one GEMM call.</summary>
    internal readonly struct Problem(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        public bool TransA { get; } = transA;
        public bool TransB { get; } = transB;
        public int M { get; } = m;
        public int N { get; } = n;
        public int K { get; } = k;
        public float Alpha { get; } = alpha;
        public float* A { get; } = a;
        public int Lda { get; } = lda;
        public float* B { get; } = b;
        public int Ldb { get; } = ldb;
        public float Beta { get; } = beta;
        public float* C { get; } = c;
        public int Ldc { get; } = ldc;
    }

    /// <summary>One thread's grow-only packing buffers: 64-byte aligned floats on the pinned heap.</summary>
    private sealed class GemmWorkspace
    {
        private float[] _a = [], _b = [];
        private float* _alignedA, _alignedB;

        /// <summary>At least <paramref name="floats"/> floats for packed A; the contents are undefined.</summary>
        public float* ReserveA(long floats) => Reserve(ref _a, ref _alignedA, floats);

        /// <summary>At least <paramref name="floats"/> floats for a packed B band; the contents are undefined.</summary>
        public float* ReserveB(long floats) => Reserve(ref _b, ref _alignedB, floats);

        private static float* Reserve(ref float[] buffer, ref float* aligned, long floats)
        {
            if (floats + 16 > buffer.Length)
            {
                // Pinned so the pointer stays valid; 16 spare floats let the start round up to a cache line.
                buffer = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
                nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
                aligned = (float*)((start + 63) & ~(nint)63);
            }
            return aligned;
        }
    }
}
