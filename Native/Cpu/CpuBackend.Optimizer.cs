using System.Buffers;
using System.Runtime.Intrinsics;

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
    protected override double ClipByGlobalNormCore(float maxNorm, ReadOnlySpan<Tensor> tensors)
    {
        double norm = GlobalNormCore(tensors);
        if (double.IsFinite(norm) && norm > maxNorm)
        {
            float factor = (float)(maxNorm / norm);
            foreach (var tensor in tensors) ScaleCore(tensor, factor);
        }
        return norm;
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
        public Vector512<float> Invoke(Vector512<float> x) => x * Vector512.Create(factor);
    }

    /// <summary>Writes the float64 sum of squares of chunk k to partials[k].</summary>
    private readonly unsafe struct SquaresKernel(float* values, double* partials) : IRangeKernel
    {
        public void Run(long start, int length)
        {
            float* x = values + start;
            // Four accumulators hide the FMA latency; the float32 squares are exact in float64, only additions round.
            Vector512<double> a0 = Vector512<double>.Zero, a1 = Vector512<double>.Zero, a2 = Vector512<double>.Zero, a3 = Vector512<double>.Zero;
            int i = 0;
            for (; i <= length - 2 * ElementWise.Lanes; i += 2 * ElementWise.Lanes)
            {
                var (b0, b1) = Vector512.Widen(Vector512.Load(x + i));
                var (b2, b3) = Vector512.Widen(Vector512.Load(x + i + ElementWise.Lanes));
                a0 = Vector512.FusedMultiplyAdd(b0, b0, a0);
                a1 = Vector512.FusedMultiplyAdd(b1, b1, a1);
                a2 = Vector512.FusedMultiplyAdd(b2, b2, a2);
                a3 = Vector512.FusedMultiplyAdd(b3, b3, a3);
            }
            for (; i < length; i += ElementWise.Lanes)
            {
                int n = Math.Min(ElementWise.Lanes, length - i);
                var (b0, b1) = Vector512.Widen(n == ElementWise.Lanes ? Vector512.Load(x + i) : ElementWise.LoadTail(x + i, n));
                a0 = Vector512.FusedMultiplyAdd(b0, b0, a0);
                a1 = Vector512.FusedMultiplyAdd(b1, b1, a1);
            }
            partials[start / ElementWise.ChunkLength] = Vector512.Sum((a0 + a1) + (a2 + a3));
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

        public void Run(long start, int length)
        {
            float* p = _p + start, g = _g + start, m = _m + start, v = _v + start;
            int i = 0;
            for (; i <= length - ElementWise.Lanes; i += ElementWise.Lanes)
            {
                var (pi, mi, vi) = Update(Vector512.Load(p + i), Vector512.Load(g + i), Vector512.Load(m + i), Vector512.Load(v + i));
                pi.Store(p + i);
                mi.Store(m + i);
                vi.Store(v + i);
            }
            if (i < length)
            {
                int n = length - i;
                var (pi, mi, vi) = Update(ElementWise.LoadTail(p + i, n), ElementWise.LoadTail(g + i, n), ElementWise.LoadTail(m + i, n), ElementWise.LoadTail(v + i, n));
                ElementWise.StoreTail(p + i, pi, n);
                ElementWise.StoreTail(m + i, mi, n);
                ElementWise.StoreTail(v + i, vi, n);
            }
        }

        private (Vector512<float> P, Vector512<float> M, Vector512<float> V) Update(Vector512<float> p, Vector512<float> g, Vector512<float> m, Vector512<float> v)
        {
            g *= Vector512.Create(_gradientScale);
            m = Vector512.Create(_beta1) * m + Vector512.Create(_oneMinusBeta1) * g;
            v = Vector512.Create(_beta2) * v + Vector512.Create(_oneMinusBeta2) * (g * g);
            var step = m * Vector512.Create(_correction1) / (Vector512.Sqrt(v * Vector512.Create(_correction2)) + Vector512.Create(_epsilon));
            p -= Vector512.Create(_learningRate) * (step + Vector512.Create(_decay) * p);
            return (p, m, v);
        }
    }
}
