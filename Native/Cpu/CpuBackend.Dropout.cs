using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset)
    {
        if (probability == 0f)
        {
            // The identity: skip the generator (and the copy when running in place).
            if (Floats(output) != Floats(input)) CopyCore(output, input);
            return;
        }
        ElementWise.For(_pool, input.ElementCount, new DropoutKernel(Floats(output), Floats(input), probability, seed, offset, accumulate: false));
    }

    /// <inheritdoc/>
    protected override unsafe void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset)
    {
        if (probability == 0f)
        {
            ElementWise.Accumulate(_pool, Floats(gradInput), Floats(gradOutput), Floats(gradOutput), gradInput.ElementCount, new Second());
            return;
        }
        ElementWise.For(_pool, gradInput.ElementCount, new DropoutKernel(Floats(gradInput), Floats(gradOutput), probability, seed, offset, accumulate: true));
    }

    /// <summary>f(x, y) = y: with the same tensor as x it makes <see cref="ElementWise.Accumulate{TOperator}"/> a plain <c>a += y</c>.</summary>
    private readonly struct Second : IBinaryOperator
    {
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => y;
    }

    /// <summary>
    /// <c>destination[i] (=|+=) keep(i) ? source[i] / (1 - p) : 0</c>, with keep(i) drawn from Philox by element
    /// index, so any chunking gives the mask of a serial pass.
    /// </summary>
    private readonly unsafe struct DropoutKernel(float* destination, float* source, float probability, ulong seed, ulong offset, bool accumulate) : IRangeKernel
    {
        private readonly uint _threshold = Philox.KeepThreshold(probability);
        private readonly float _keep = 1f - probability;

        public void Run(long start, int length)
        {
            // Chunks start at multiples of ElementWise.ChunkLength, hence of 4, so every group of 32 elements is
            // eight whole Philox blocks.
            for (int i = 0; i < length; i += 32)
            {
                var (first, second) = Philox.Words32(seed, offset, (ulong)(start + i) >> 2);
                int n = Math.Min(32, length - i);
                Apply(first, start + i, Math.Min(16, n));
                if (n > 16) Apply(second, start + i + 16, n - 16);
            }
        }

        private void Apply(Vector512<uint> words, long index, int count)
        {
            float* y = destination + index, x = source + index;
            var kept = Vector512.GreaterThanOrEqual(words, Vector512.Create(_threshold)).AsSingle();
            // Divide rather than multiply by 1/(1-p): the kept value is then the correctly rounded x / (1 - p).
            var value = ((count == ElementWise.Lanes ? Vector512.Load(x) : ElementWise.LoadTail(x, count)) / Vector512.Create(_keep)) & kept;
            if (accumulate) value += count == ElementWise.Lanes ? Vector512.Load(y) : ElementWise.LoadTail(y, count);
            if (count == ElementWise.Lanes) value.Store(y);
            else ElementWise.StoreTail(y, value, count);
        }
    }
}
