using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

/// <summary>A lane-wise function of one vector, applied by <see cref="ElementWise.Map{TOperator}"/>.</summary>
/// <remarks>
/// Operators are structs, so the JIT compiles one loop per operator and width with <c>Invoke</c> inlined.
/// Parameterless operators are zero-size; parameterised ones (a slope, a factor) carry it as a field, which is
/// why <c>Invoke</c> is an instance member. It is generic over the <see cref="IWidth{TFloat, TDouble}"/>.
/// </remarks>
internal interface IUnaryOperator
{
    /// <summary>f(x) for each lane.</summary>
    TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x) where TWidth : IWidth<TFloat, TDouble>;
}

/// <summary>A lane-wise function of two vectors, applied by <see cref="ElementWise.Accumulate{TOperator}"/>.</summary>
internal interface IBinaryOperator
{
    /// <summary>f(x, y) for each lane.</summary>
    TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x, TFloat y) where TWidth : IWidth<TFloat, TDouble>;
}

/// <summary>A parallel job whose items run vector code: <see cref="ElementWise.ForEach{TJob}"/> runs each at the widest accelerated width.</summary>
internal interface IVectorJob
{
    /// <summary>Runs work item <paramref name="index"/>; items may run concurrently and in any order.</summary>
    void Execute<TWidth, TFloat, TDouble>(int index) where TWidth : IWidth<TFloat, TDouble>;
}

/// <summary>A kernel over the elements [start, start + length) of its tensors; <see cref="ElementWise.For{TKernel}"/> runs it chunk by chunk.</summary>
internal interface IRangeKernel
{
    /// <summary>Processes one chunk at one width; chunks may run concurrently, so a kernel writes only its own range.</summary>
    void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>;
}

/// <summary>
/// The loop driver of the element-wise CPU kernels: splits a tensor into fixed chunks, runs them across the
/// <see cref="WorkerPool"/>, and inside a chunk walks vectors of the widest accelerated <see cref="IWidth{TFloat, TDouble}"/>.
/// </summary>
/// <remarks>
/// The last partial vector of a chunk is zero-padded through a stack vector and computed by the same vector
/// code, so every element is rounded identically wherever it lies and no operator needs a scalar twin. Chunk
/// boundaries depend only on the element count, never on the thread count, so results are identical for any
/// number of threads.
/// </remarks>
internal static unsafe class ElementWise
{
    /// <summary>
    /// Elements per parallel work item (128 KiB of floats per operand): large enough that handing out a chunk
    /// (one interlocked increment) is noise, small enough that two busy cores still balance. A multiple of 64,
    /// so chunks start on cache lines and on Philox blocks.
    /// </summary>
    public const int ChunkLength = 1 << 15;

    /// <summary>Number of chunks <paramref name="length"/> elements split into.</summary>
    public static int ChunkCount(long length) => checked((int)((length + ChunkLength - 1) / ChunkLength));

    /// <summary>Runs <paramref name="kernel"/> over [0, length) chunk by chunk across the pool (on the caller when one chunk suffices).</summary>
    public static void For<TKernel>(WorkerPool pool, long length, TKernel kernel) where TKernel : struct, IRangeKernel
    {
        if (length > 0) ForEach(pool, ChunkCount(length), new ChunkJob<TKernel>(kernel, length));
    }

    /// <summary>Runs items [0, count) of <paramref name="job"/> across the pool, at the widest accelerated width.</summary>
    public static void ForEach<TJob>(WorkerPool pool, int count, TJob job) where TJob : struct, IVectorJob
    {
        var dispatch = new WidthDispatch<TJob>(job);
        pool.For(count, ref dispatch);
    }

    /// <summary><c>output[i] = op(input[i])</c>; output may be input itself.</summary>
    public static void Map<TOperator>(WorkerPool pool, float* output, float* input, long length, TOperator op)
        where TOperator : struct, IUnaryOperator
        => For(pool, length, new MapKernel<TOperator>(output, input, op));

    /// <summary><c>accumulator[i] += op(x[i], y[i])</c>.</summary>
    public static void Accumulate<TOperator>(WorkerPool pool, float* accumulator, float* x, float* y, long length, TOperator op)
        where TOperator : struct, IBinaryOperator
        => For(pool, length, new AccumulateKernel<TOperator>(accumulator, x, y, op));

    /// <summary>
    /// The whole vector, or the zero-padded tail, at <paramref name="source"/>: <paramref name="count"/> lanes live.
    /// Kernels call it with the constant Lanes in their main loop, where the branch folds away, and once with the
    /// remainder.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TFloat Load<TWidth, TFloat, TDouble>(float* source, int count) where TWidth : IWidth<TFloat, TDouble> =>
        count == TWidth.Lanes ? TWidth.Load(source) : TWidth.LoadTail(source, count);

    /// <summary>Stores the first <paramref name="count"/> lanes (all of them when count is Lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TWidth, TFloat, TDouble>(TFloat value, float* destination, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        if (count == TWidth.Lanes) TWidth.Store(value, destination);
        else TWidth.StoreTail(value, destination, count);
    }

    /// <summary>Picks the width once per item; the branch is a JIT-time constant.</summary>
    private struct WidthDispatch<TJob>(TJob job) : IParallelJob where TJob : struct, IVectorJob
    {
        private TJob _job = job;

        public void Execute(int index)
        {
            if (Vector512.IsHardwareAccelerated) _job.Execute<Width512, Vector512<float>, Vector512<double>>(index);
            else _job.Execute<Width256, Vector256<float>, Vector256<double>>(index);
        }
    }

    private struct ChunkJob<TKernel>(TKernel kernel, long length) : IVectorJob where TKernel : struct, IRangeKernel
    {
        private TKernel _kernel = kernel;

        public void Execute<TWidth, TFloat, TDouble>(int index) where TWidth : IWidth<TFloat, TDouble>
        {
            long start = (long)index * ChunkLength;
            _kernel.Run<TWidth, TFloat, TDouble>(start, (int)Math.Min(ChunkLength, length - start));
        }
    }

    private struct MapKernel<TOperator>(float* output, float* input, TOperator op) : IRangeKernel
        where TOperator : struct, IUnaryOperator
    {
        private TOperator _op = op;

        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            float* x = input + start, y = output + start;
            int i = 0;
            for (; i <= length - TWidth.Lanes; i += TWidth.Lanes) Step<TWidth, TFloat, TDouble>(x + i, y + i, TWidth.Lanes);
            if (i < length) Step<TWidth, TFloat, TDouble>(x + i, y + i, length - i);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Step<TWidth, TFloat, TDouble>(float* x, float* y, int n) where TWidth : IWidth<TFloat, TDouble> =>
            Store<TWidth, TFloat, TDouble>(_op.Invoke<TWidth, TFloat, TDouble>(Load<TWidth, TFloat, TDouble>(x, n)), y, n);
    }

    private struct AccumulateKernel<TOperator>(float* accumulator, float* x, float* y, TOperator op) : IRangeKernel
        where TOperator : struct, IBinaryOperator
    {
        private TOperator _op = op;

        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            float* a = accumulator + start, u = x + start, v = y + start;
            int i = 0;
            for (; i <= length - TWidth.Lanes; i += TWidth.Lanes) Step<TWidth, TFloat, TDouble>(a + i, u + i, v + i, TWidth.Lanes);
            if (i < length) Step<TWidth, TFloat, TDouble>(a + i, u + i, v + i, length - i);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Step<TWidth, TFloat, TDouble>(float* a, float* u, float* v, int n) where TWidth : IWidth<TFloat, TDouble>
        {
            var sum = TWidth.Add(Load<TWidth, TFloat, TDouble>(a, n),
                _op.Invoke<TWidth, TFloat, TDouble>(Load<TWidth, TFloat, TDouble>(u, n), Load<TWidth, TFloat, TDouble>(v, n)));
            Store<TWidth, TFloat, TDouble>(sum, a, n);
        }
    }
}
