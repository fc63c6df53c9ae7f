using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        var job = new CrossEntropyJob(Floats(losses), null, null, Floats(logits), (int*)Address(targets),
            logits.Shape[0], logits.Shape[1], ignoreIndex);
        _pool.For(job.ItemCount, ref job);
    }

    /// <inheritdoc/>
    protected override unsafe void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        var job = new CrossEntropyJob(null, Floats(gradLogits), Floats(gradLosses), Floats(logits), (int*)Address(targets),
            logits.Shape[0], logits.Shape[1], ignoreIndex);
        _pool.For(job.ItemCount, ref job);
    }

    /// <summary>
    /// Rows of the fused softmax cross-entropy, forward (losses set) or backward (gradLogits set), grouped so a
    /// work item covers about one element chunk. Rows are independent, so any split is deterministic.
    /// </summary>
    private readonly unsafe struct CrossEntropyJob(float* losses, float* gradLogits, float* gradLosses, float* logits, int* targets,
        int rows, int classes, int ignoreIndex) : IParallelJob
    {
        private readonly int _rowsPerItem = Math.Max(1, ElementWise.ChunkLength / Math.Max(1, classes));

        public int ItemCount => (rows + _rowsPerItem - 1) / _rowsPerItem;

        public void Execute(int index)
        {
            int end = Math.Min(rows, (index + 1) * _rowsPerItem);
            for (int r = index * _rowsPerItem; r < end; r++)
            {
                int target = targets[r];
                bool ignored = target == ignoreIndex;
                if (losses is not null) losses[r] = ignored ? 0f : Loss(logits + (long)r * classes, target);
                else if (!ignored) Backward(gradLogits + (long)r * classes, gradLosses[r], logits + (long)r * classes, target);
            }
        }

        /// <summary>logsumexp(row) - row[target] = log(sum exp(row - max)) + max - row[target], in float64.</summary>
        private float Loss(float* row, int target)
        {
            var (max, sum) = Normaliser(row);
            return (float)(Math.Log(sum) + (max - (double)row[target]));
        }

        /// <summary>
        /// gradient += g * (exp(row - max) / sum - onehot(target)). The target element is redone in float64 as
        /// g * (e_t - sum) / sum: when its probability nears 1, p_t - 1 would otherwise cancel in float32.
        /// </summary>
        private void Backward(float* gradient, float g, float* row, int target)
        {
            var (max, sum) = Normaliser(row);
            float before = gradient[target];
            var scale = Vector512.Create((float)(g / sum));
            var shift = Vector512.Create(max);
            int i = 0;
            for (; i <= classes - ElementWise.Lanes; i += ElementWise.Lanes)
                Vector512.FusedMultiplyAdd(VectorMath.Exp(Vector512.Load(row + i) - shift), scale, Vector512.Load(gradient + i)).Store(gradient + i);
            if (i < classes)
            {
                int n = classes - i;
                var update = Vector512.FusedMultiplyAdd(VectorMath.Exp(ElementWise.LoadTail(row + i, n) - shift), scale, ElementWise.LoadTail(gradient + i, n));
                ElementWise.StoreTail(gradient + i, update, n);
            }
            double exponential = Math.Exp((double)row[target] - max);
            gradient[target] = (float)(before + g * (exponential - sum) / sum);
        }

        /// <summary>The row maximum and sum(exp(row - max)) (at least 1), the sum in float64.</summary>
        private (float Max, double Sum) Normaliser(float* row)
        {
            float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, classes));
            var shift = Vector512.Create(max);
            Vector512<double> lo = Vector512<double>.Zero, hi = Vector512<double>.Zero;
            int i = 0;
            for (; i <= classes - ElementWise.Lanes; i += ElementWise.Lanes)
            {
                var (a, b) = Vector512.Widen(VectorMath.Exp(Vector512.Load(row + i) - shift));
                lo += a;
                hi += b;
            }
            if (i < classes)
            {
                // Padding lanes would add exp(0 - max); mask them to 0.
                var live = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(classes - i)).AsSingle();
                var (a, b) = Vector512.Widen(VectorMath.Exp(ElementWise.LoadTail(row + i, classes - i) - shift) & live);
                lo += a;
                hi += b;
            }
            return (max, Vector512.Sum(lo + hi));
        }
    }
}
