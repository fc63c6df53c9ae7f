using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        var job = new CrossEntropyJob(Floats(losses), null, null, Floats(logits), (int*)Address(targets),
            logits.Shape[0], logits.Shape[1], ignoreIndex);
        ElementWise.ForEach(_pool, job.ItemCount, job);
    }

    /// <inheritdoc/>
    protected override unsafe void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        var job = new CrossEntropyJob(null, Floats(gradLogits), Floats(gradLosses), Floats(logits), (int*)Address(targets),
            logits.Shape[0], logits.Shape[1], ignoreIndex);
        ElementWise.ForEach(_pool, job.ItemCount, job);
    }

    /// <summary>
    /// Rows of the fused softmax cross-entropy, forward (losses set) or backward (gradLogits set), grouped so a
    /// work item covers about one element chunk. Rows are independent, so any split is deterministic.
    /// </summary>
    private readonly unsafe struct CrossEntropyJob(float* losses, float* gradLogits, float* gradLosses, float* logits, int* targets,
        int rows, int classes, int ignoreIndex) : IVectorJob
    {
        private readonly int _rowsPerItem = Math.Max(1, ElementWise.ChunkLength / Math.Max(1, classes));

        public int ItemCount => (rows + _rowsPerItem - 1) / _rowsPerItem;

        public void Execute<TWidth, TFloat, TDouble>(int index) where TWidth : IWidth<TFloat, TDouble>
        {
            int end = Math.Min(rows, (index + 1) * _rowsPerItem);
            for (int r = index * _rowsPerItem; r < end; r++)
            {
                int target = targets[r];
                bool ignored = target == ignoreIndex;
                float* row = logits + (long)r * classes;
                if (losses is not null) losses[r] = ignored ? 0f : Loss<TWidth, TFloat, TDouble>(row, target);
                else if (!ignored) Backward<TWidth, TFloat, TDouble>(gradLogits + (long)r * classes, gradLosses[r], row, target);
            }
        }

        /// <summary>logsumexp(row) - row[target] = log(sum exp(row - max)) + max - row[target], in float64.</summary>
        private float Loss<TWidth, TFloat, TDouble>(float* row, int target) where TWidth : IWidth<TFloat, TDouble>
        {
            var (max, sum) = Normaliser<TWidth, TFloat, TDouble>(row);
            return (float)(Math.Log(sum) + (max - (double)row[target]));
        }

        /// <summary>
        /// gradient += g * (exp(row - max) / sum - onehot(target)). The target element is redone in float64 as
        /// g * (e_t - sum) / sum: when its probability nears 1, p_t - 1 would otherwise cancel in float32.
        /// </summary>
        private void Backward<TWidth, TFloat, TDouble>(float* gradient, float g, float* row, int target) where TWidth : IWidth<TFloat, TDouble>
        {
            var (max, sum) = Normaliser<TWidth, TFloat, TDouble>(row);
            float before = gradient[target];
            var scale = TWidth.Broadcast((float)(g / sum));
            var shift = TWidth.Broadcast(max);
            int i = 0;
            for (; i <= classes - TWidth.Lanes; i += TWidth.Lanes) Step(i, TWidth.Lanes);
            if (i < classes) Step(i, classes - i);
            double exponential = Math.Exp((double)row[target] - max);
            gradient[target] = (float)(before + g * (exponential - sum) / sum);

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            void Step(int i, int n)
            {
                var e = VectorMath.Exp<TWidth, TFloat, TDouble>(TWidth.Subtract(ElementWise.Load<TWidth, TFloat, TDouble>(row + i, n), shift));
                ElementWise.Store<TWidth, TFloat, TDouble>(TWidth.Fma(e, scale, ElementWise.Load<TWidth, TFloat, TDouble>(gradient + i, n)), gradient + i, n);
            }
        }

        /// <summary>The row maximum and sum(exp(row - max)) (at least 1), the sum in float64.</summary>
        private (float Max, double Sum) Normaliser<TWidth, TFloat, TDouble>(float* row) where TWidth : IWidth<TFloat, TDouble>
        {
            float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, classes));
            var shift = TWidth.Broadcast(max);
            TDouble lo = TWidth.Broadcast(0.0), hi = lo;
            int i = 0;
            for (; i <= classes - TWidth.Lanes; i += TWidth.Lanes)
            {
                var (a, b) = TWidth.Widen(VectorMath.Exp<TWidth, TFloat, TDouble>(TWidth.Subtract(TWidth.Load(row + i), shift)));
                lo = TWidth.Add(lo, a);
                hi = TWidth.Add(hi, b);
            }
            if (i < classes)
            {
                // Padding lanes would add exp(0 - max); keep only the live ones.
                var e = VectorMath.Exp<TWidth, TFloat, TDouble>(TWidth.Subtract(TWidth.LoadTail(row + i, classes - i), shift));
                var (a, b) = TWidth.Widen(TWidth.And(TWidth.FirstLanes(classes - i), e));
                lo = TWidth.Add(lo, a);
                hi = TWidth.Add(hi, b);
            }
            return (max, TWidth.Sum(TWidth.Add(lo, hi)));
        }
    }
}
