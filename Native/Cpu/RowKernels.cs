using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// Reductions and fused updates over one contiguous row of floats, generic over the
/// <see cref="IWidth{TFloat, TDouble}"/>, shared by the row-wise kernels (layer norm, residual, attention).
/// </summary>
/// <remarks>
/// Reductions keep one vector accumulator whose lanes are fixed by position from the start of the row (not by
/// address alignment, as TensorPrimitives' reductions are), sum its lanes in a fixed order, then add the tail
/// element by element. So the same values always give the same bits wherever they are stored, whichever thread
/// runs the row: results are identical run to run and for any thread count. They do depend on the width (16 lanes
/// where AVX-512 is accelerated, 8 elsewhere), as every float32 reduction of this backend does.
/// </remarks>
internal static unsafe class RowKernels
{
    /// <summary><c>sum(row)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum<TWidth, TFloat, TDouble>(float* row, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        var acc = TWidth.Broadcast(0f);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes) acc = TWidth.Add(acc, TWidth.Load(row + j));
        float sum = TWidth.Sum(acc);
        for (; j < count; j++) sum += row[j];
        return sum;
    }

    /// <summary><c>sum(a * b)</c>, each product fused into its accumulation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot<TWidth, TFloat, TDouble>(float* a, float* b, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        var acc = TWidth.Broadcast(0f);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes) acc = TWidth.Fma(TWidth.Load(a + j), TWidth.Load(b + j), acc);
        float sum = TWidth.Sum(acc);
        for (; j < count; j++) sum = MathF.FusedMultiplyAdd(a[j], b[j], sum);
        return sum;
    }

    /// <summary><c>sum((row - mean)^2)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SquaredDeviation<TWidth, TFloat, TDouble>(float* row, float mean, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        var m = TWidth.Broadcast(mean);
        var acc = TWidth.Broadcast(0f);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
        {
            var d = TWidth.Subtract(TWidth.Load(row + j), m);
            acc = TWidth.Fma(d, d, acc);
        }
        float sum = TWidth.Sum(acc);
        for (; j < count; j++)
        {
            float d = row[j] - mean;
            sum = MathF.FusedMultiplyAdd(d, d, sum);
        }
        return sum;
    }

    /// <summary>
    /// <c>destination = lambda * x + beta * branch</c> (DSLM's residual, dslm-theory 2.9), fused, the same bits in
    /// the vector body and the tail. Each element is read before it is written, so the destination may be x or
    /// the branch itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Combine<TWidth, TFloat, TDouble>(float* destination, float* x, float lambda, float* branch, float beta, int count)
        where TWidth : IWidth<TFloat, TDouble>
    {
        var l = TWidth.Broadcast(lambda);
        var b = TWidth.Broadcast(beta);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
            TWidth.Store(TWidth.Fma(TWidth.Load(x + j), l, TWidth.Multiply(TWidth.Load(branch + j), b)), destination + j);
        for (; j < count; j++) destination[j] = MathF.FusedMultiplyAdd(x[j], lambda, branch[j] * beta);
    }

    /// <summary><c>destination += factor * source</c>, rounded once per element (Combine with the destination as a branch of weight 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddScaled<TWidth, TFloat, TDouble>(float* destination, float* source, float factor, int count)
        where TWidth : IWidth<TFloat, TDouble> =>
        Combine<TWidth, TFloat, TDouble>(destination, source, factor, destination, 1f, count);

    /// <summary>
    /// In place, <c>row = softmax(row + bias)</c> over <paramref name="count"/> entries (bias optional),
    /// max-subtracted so exp never overflows, with <see cref="VectorMath.Exp{TWidth, TFloat, TDouble}"/> (exact at
    /// 0, within 1.01 ulp elsewhere). A row with no finite score (all -infinity, or empty) becomes 0 instead of
    /// 0/0 = NaN.
    /// </summary>
    public static void Softmax<TWidth, TFloat, TDouble>(float* row, float* bias, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        var span = new Span<float>(row, count);
        if (bias is not null) TensorPrimitives.Add(span, new ReadOnlySpan<float>(bias, count), span);
        float max = count == 0 ? float.NegativeInfinity : TensorPrimitives.Max(span);
        if (float.IsNegativeInfinity(max))
        {
            span.Clear();
            return;
        }
        var shift = TWidth.Broadcast(max);
        var sum = TWidth.Broadcast(0f);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
        {
            var e = VectorMath.Exp<TWidth, TFloat, TDouble>(TWidth.Subtract(TWidth.Load(row + j), shift));
            TWidth.Store(e, row + j);
            sum = TWidth.Add(sum, e);
        }
        if (j < count)
        {
            // The tail goes through the same vector exp; its zero padding would add exp(-max), so it is masked off.
            var e = TWidth.And(TWidth.FirstLanes(count - j),
                VectorMath.Exp<TWidth, TFloat, TDouble>(TWidth.Subtract(TWidth.LoadTail(row + j, count - j), shift)));
            TWidth.StoreTail(e, row + j, count - j);
            sum = TWidth.Add(sum, e);
        }
        TensorPrimitives.Multiply(span, 1f / TWidth.Sum(sum), span);
    }

    /// <summary>
    /// Softmax backward of one row in place: with <c>r = sum(grad * p)</c>, <c>grad = factor * p * (grad - r)</c>.
    /// Returns r.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SoftmaxBackward<TWidth, TFloat, TDouble>(float* grad, float* p, int count, float factor)
        where TWidth : IWidth<TFloat, TDouble>
    {
        float dot = Dot<TWidth, TFloat, TDouble>(grad, p, count);
        var shift = TWidth.Broadcast(dot);
        var scale = TWidth.Broadcast(factor);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
            TWidth.Store(TWidth.Multiply(TWidth.Multiply(TWidth.Subtract(TWidth.Load(grad + j), shift), TWidth.Load(p + j)), scale), grad + j);
        for (; j < count; j++) grad[j] = (grad[j] - dot) * p[j] * factor;
        return dot;
    }
}
