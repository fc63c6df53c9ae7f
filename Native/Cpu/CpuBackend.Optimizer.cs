using System.Buffers;
using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale) =>
        ElementWise.For(_pool, parameters.ElementCount,
            new AdamWKernel(Floats(parameters), Floats(gradients), Floats(firstMoment), Floats(secondMoment), options, step, gradientScale));

    /// <inheritdoc/>
    protected override double GlobalNormCore(ReadOnlySpan<Tensor> tensors)
    {
        double sum = 0;
        foreach (var tensor in tensors) sum += SumOfSquares(tensor);
        return Math.Sqrt(sum);
    }

    /// <inheritdoc/>
    protected override unsafe void ScaleCore(Tensor tensor, float factor)
    {
        float* x = Floats(tensor);
        ElementWise.Map(_pool, x, x, tensor.ElementCount, new Multiply(factor));
    }

    /// <summary>
    /// Sum of the squares of a tensor's elements in float64: one partial per element chunk (chunking depends on
    /// the length only), the partials then added in chunk order, so the result never depends on the thread count.
    /// </summary>
    private unsafe double SumOfSquares(Tensor tensor)
    {
        long length = tensor.ElementCount;
        int chunks = ElementWise.ChunkCount(length);
        // Pooled, not allocated: after the first call on a thread the pool serves the same array again.
        double[] partials = ArrayPool<double>.Shared.Rent(Math.Max(1, chunks));
        try
        {
            fixed (double* p = partials)
            {
                ElementWise.For(_pool, length, new SquaresKernel(Floats(tensor), p));
                double sum = 0;
                for (int i = 0; i < chunks; i++) sum += p[i];
                return sum;
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(partials);
        }
    }

    /// <summary>x * factor.</summary>
    private readonly struct Multiply(float factor) : IUnaryOperator
    {
        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.Multiply(x, TWidth.Broadcast(factor));
    }

    /// <summary>Writes the float64 sum of squares of chunk k to partials[k].</summary>
    private readonly unsafe struct SquaresKernel(float* values, double* partials) : IRangeKernel
    {
        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            float* x = values + start;
            // Four accumulators hide the FMA latency; the float32 squares are exact in float64, only additions
            // round. Zero padding adds nothing.
            TDouble a0 = TWidth.Broadcast(0.0), a1 = a0, a2 = a0, a3 = a0;
            int i = 0;
            for (; i <= length - 2 * TWidth.Lanes; i += 2 * TWidth.Lanes)
            {
                var (b0, b1) = TWidth.Widen(TWidth.Load(x + i));
                var (b2, b3) = TWidth.Widen(TWidth.Load(x + i + TWidth.Lanes));
                a0 = TWidth.Fma(b0, b0, a0);
                a1 = TWidth.Fma(b1, b1, a1);
                a2 = TWidth.Fma(b2, b2, a2);
                a3 = TWidth.Fma(b3, b3, a3);
            }
            for (; i < length; i += TWidth.Lanes)
            {
                var (b0, b1) = TWidth.Widen(ElementWise.Load<TWidth, TFloat, TDouble>(x + i, Math.Min(TWidth.Lanes, length - i)));
                a0 = TWidth.Fma(b0, b0, a0);
                a1 = TWidth.Fma(b1, b1, a1);
            }
            partials[start / ElementWise.ChunkLength] = TWidth.Sum(TWidth.Add(TWidth.Add(a0, a1), TWidth.Add(a2, a3)));
        }
    }

    /// <summary>
    /// One AdamW update per element. The bias corrections are formed in float64 and rounded once; the rest is
    /// float32, as the state is.
    /// </summary>
    private readonly unsafe struct AdamWKernel : IRangeKernel
    {
        private readonly float* _p, _g, _m, _v;
        private readonly float _beta1, _beta2, _oneMinusBeta1, _oneMinusBeta2, _correction1, _correction2,
            _epsilon, _learningRate, _decay, _gradientScale;

        public AdamWKernel(float* parameters, float* gradients, float* firstMoment, float* secondMoment, AdamWOptions options, int step, float gradientScale)
        {
            _p = parameters;
            _g = gradients;
            _m = firstMoment;
            _v = secondMoment;
            _beta1 = options.Beta1;
            _beta2 = options.Beta2;
            _oneMinusBeta1 = 1f - options.Beta1;
            _oneMinusBeta2 = 1f - options.Beta2;
            _correction1 = (float)(1.0 / (1.0 - Math.Pow(options.Beta1, step)));
            _correction2 = (float)(1.0 / (1.0 - Math.Pow(options.Beta2, step)));
            _epsilon = options.Epsilon;
            _learningRate = options.LearningRate;
            _decay = options.WeightDecay;
            _gradientScale = gradientScale;
        }

        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            int i = 0;
            for (; i <= length - TWidth.Lanes; i += TWidth.Lanes) Step<TWidth, TFloat, TDouble>(start + i, TWidth.Lanes);
            if (i < length) Step<TWidth, TFloat, TDouble>(start + i, length - i);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Step<TWidth, TFloat, TDouble>(long index, int n) where TWidth : IWidth<TFloat, TDouble>
        {
            float* p = _p + index, g = _g + index, m = _m + index, v = _v + index;
            var gi = TWidth.Multiply(ElementWise.Load<TWidth, TFloat, TDouble>(g, n), TWidth.Broadcast(_gradientScale));
            var mi = TWidth.Fma(TWidth.Broadcast(_beta1), ElementWise.Load<TWidth, TFloat, TDouble>(m, n), TWidth.Multiply(TWidth.Broadcast(_oneMinusBeta1), gi));
            var vi = TWidth.Fma(TWidth.Broadcast(_beta2), ElementWise.Load<TWidth, TFloat, TDouble>(v, n), TWidth.Multiply(TWidth.Broadcast(_oneMinusBeta2), TWidth.Multiply(gi, gi)));
            var step = TWidth.Divide(TWidth.Multiply(mi, TWidth.Broadcast(_correction1)),
                TWidth.Add(TWidth.Sqrt(TWidth.Multiply(vi, TWidth.Broadcast(_correction2))), TWidth.Broadcast(_epsilon)));
            var pi = ElementWise.Load<TWidth, TFloat, TDouble>(p, n);
            pi = TWidth.Subtract(pi, TWidth.Multiply(TWidth.Broadcast(_learningRate), TWidth.Fma(TWidth.Broadcast(_decay), pi, step)));
            ElementWise.Store<TWidth, TFloat, TDouble>(pi, p, n);
            ElementWise.Store<TWidth, TFloat, TDouble>(mi, m, n);
            ElementWise.Store<TWidth, TFloat, TDouble>(vi, v, n);
        }
    }
}
