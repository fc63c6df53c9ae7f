using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

/// <summary>A lane-wise function of one vector, applied by <see cref="ElementWise.Map{TOperator}"/>.</summary>
/// <remarks>
/// Operators are structs so the JIT compiles one specialised loop per operator with <c>Invoke</c> inlined.
/// Parameterless operators are zero-size; parameterised ones (a slope, a factor) carry it as a field, which is
/// why <c>Invoke</c> is an instance member rather than a static abstract one.
/// </remarks>
internal interface IUnaryOperator
{
    /// <summary>f(x) for each of the 16 lanes.</summary>
    Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>A lane-wise function of two vectors, applied by <see cref="ElementWise.Accumulate{TOperator}"/>.</summary>
internal interface IBinaryOperator
{
    /// <summary>f(x, y) for each of the 16 lanes.</summary>
    Vector512<float> Invoke(Vector512<float> x, Vector512<float> y);
}

/// <summary>A kernel over the elements [start, start + length) of its tensors; <see cref="ElementWise.For{TKernel}"/> runs it chunk by chunk.</summary>
internal interface IRangeKernel
{
    /// <summary>Processes one chunk; chunks may run concurrently, so a kernel writes only its own range.</summary>
    void Run(long start, int length);
}

/// <summary>
/// The loop driver of every element-wise CPU kernel: splits a tensor into fixed chunks, runs them across the
/// <see cref="WorkerPool"/>, and inside a chunk walks 16-float vectors.
/// </summary>
/// <remarks>
/// Kernels are written once, on <see cref="Vector512{T}"/>: where 512-bit vectors are not accelerated but 256-bit
/// ones are, the runtime lowers each Vector512 operation to two Vector256 halves (measured within noise of
/// hand-written Vector256 loops under <c>DOTNET_EnableAVX512=0</c>), so a second copy of every operator would buy
/// nothing. The last partial vector of a chunk is zero-padded through a stack vector and computed by the same
/// vector code, so every element is rounded identically wherever it lies and no operator needs a scalar twin.
/// Chunk boundaries depend only on the element count, never on the thread count, so results are identical for
/// any number of threads.
/// </remarks>
internal static unsafe class ElementWise
{
    /// <summary>Floats per vector.</summary>
    public const int Lanes = 16;

    /// <summary>
    /// Elements per parallel work item (128 KiB of floats per operand): large enough that handing out a chunk
    /// (one interlocked increment) is noise, small enough that two busy cores still balance. A multiple of 64,
    /// so chunks start on cache lines and on Philox blocks.
    /// </summary>
    public const int ChunkLength = 1 << 15;

    /// <summary>Number of chunks <paramref name="length"/> elements split into.</summary>
    public static int ChunkCount(long length) => checked((int)((length + ChunkLength - 1) / ChunkLength));

    /// <summary>Runs <paramref name="kernel"/> over [0, length): on the caller when one chunk suffices, else chunk by chunk across the pool.</summary>
    public static void For<TKernel>(WorkerPool pool, long length, TKernel kernel) where TKernel : struct, IRangeKernel
    {
        if (length <= 0) return;
        if (length <= ChunkLength)
        {
            kernel.Run(0, (int)length);
            return;
        }
        var job = new ChunkJob<TKernel>(kernel, length);
        pool.For(ChunkCount(length), ref job);
    }

    /// <summary><c>output[i] = op(input[i])</c>; output may be input itself.</summary>
    public static void Map<TOperator>(WorkerPool pool, float* output, float* input, long length, TOperator op)
        where TOperator : struct, IUnaryOperator
        => For(pool, length, new MapKernel<TOperator>(output, input, op));

    /// <summary><c>accumulator[i] += op(x[i], y[i])</c>.</summary>
    public static void Accumulate<TOperator>(WorkerPool pool, float* accumulator, float* x, float* y, long length, TOperator op)
        where TOperator : struct, IBinaryOperator
        => For(pool, length, new AccumulateKernel<TOperator>(accumulator, x, y, op));

    /// <summary>The first <paramref name="count"/> (&lt; 16) floats at <paramref name="source"/>, zero-padded to a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadTail(float* source, int count)
    {
        var v = Vector512<float>.Zero;
        Buffer.MemoryCopy(source, &v, sizeof(Vector512<float>), count * sizeof(float));
        return v;
    }

    /// <summary>Stores the first <paramref name="count"/> (&lt; 16) lanes of <paramref name="value"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(float* destination, Vector512<float> value, int count) =>
        Buffer.MemoryCopy(&value, destination, count * sizeof(float), count * sizeof(float));

    private struct ChunkJob<TKernel>(TKernel kernel, long length) : IParallelJob where TKernel : struct, IRangeKernel
    {
        private TKernel _kernel = kernel;

        public void Execute(int index)
        {
            long start = (long)index * ChunkLength;
            _kernel.Run(start, (int)Math.Min(ChunkLength, length - start));
        }
    }

    private struct MapKernel<TOperator>(float* output, float* input, TOperator op) : IRangeKernel
        where TOperator : struct, IUnaryOperator
    {
        private TOperator _op = op;

        public void Run(long start, int length)
        {
            float* x = input + start, y = output + start;
            int i = 0;
            for (; i <= length - Lanes; i += Lanes)
                _op.Invoke(Vector512.Load(x + i)).Store(y + i);
            if (i < length)
                StoreTail(y + i, _op.Invoke(LoadTail(x + i, length - i)), length - i);
        }
    }

    private struct AccumulateKernel<TOperator>(float* accumulator, float* x, float* y, TOperator op) : IRangeKernel
        where TOperator : struct, IBinaryOperator
    {
        private TOperator _op = op;

        public void Run(long start, int length)
        {
            float* a = accumulator + start, u = x + start, v = y + start;
            int i = 0;
            for (; i <= length - Lanes; i += Lanes)
                (Vector512.Load(a + i) + _op.Invoke(Vector512.Load(u + i), Vector512.Load(v + i))).Store(a + i);
            if (i < length)
            {
                int n = length - i;
                StoreTail(a + i, LoadTail(a + i, n) + _op.Invoke(LoadTail(u + i, n), LoadTail(v + i, n)), n);
            }
        }
    }
}
