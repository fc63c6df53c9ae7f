using System.Runtime.CompilerServices;

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
        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x, TFloat y) where TWidth : IWidth<TFloat, TDouble> => y;
    }

    /// <summary>
    /// <c>destination[i] (=|+=) keep(i) ? source[i] / (1 - p) : 0</c>, with keep(i) drawn from Philox by element
    /// index, so any chunking gives the mask of a serial pass.
    /// </summary>
    private readonly unsafe struct DropoutKernel(float* destination, float* source, float probability, ulong seed, ulong offset, bool accumulate) : IRangeKernel
    {
        private readonly uint _threshold = Philox.KeepThreshold(probability);
        private readonly float _keep = 1f - probability;

        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            // Chunks start at multiples of ElementWise.ChunkLength, hence of 4, so every group of two vectors is
            // whole Philox blocks.
            int i = 0;
            for (; i <= length - 2 * TWidth.Lanes; i += 2 * TWidth.Lanes)
            {
                var (first, second) = TWidth.KeepMasks(seed, offset, (ulong)(start + i) >> 2, _threshold);
                Apply<TWidth, TFloat, TDouble>(first, start + i, TWidth.Lanes);
                Apply<TWidth, TFloat, TDouble>(second, start + i + TWidth.Lanes, TWidth.Lanes);
            }
            if (i < length)
            {
                var (first, second) = TWidth.KeepMasks(seed, offset, (ulong)(start + i) >> 2, _threshold);
                int n = length - i;
                Apply<TWidth, TFloat, TDouble>(first, start + i, Math.Min(TWidth.Lanes, n));
                if (n > TWidth.Lanes) Apply<TWidth, TFloat, TDouble>(second, start + i + TWidth.Lanes, n - TWidth.Lanes);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Apply<TWidth, TFloat, TDouble>(TFloat kept, long index, int count) where TWidth : IWidth<TFloat, TDouble>
        {
            float* y = destination + index;
            // Divide rather than multiply by 1/(1-p): the kept value is then the correctly rounded x / (1 - p).
            var value = TWidth.And(kept, TWidth.Divide(ElementWise.Load<TWidth, TFloat, TDouble>(source + index, count), TWidth.Broadcast(_keep)));
            if (accumulate) value = TWidth.Add(value, ElementWise.Load<TWidth, TFloat, TDouble>(y, count));
            ElementWise.Store<TWidth, TFloat, TDouble>(value, y, count);
        }
    }
}
