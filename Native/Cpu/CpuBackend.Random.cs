namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void RandomNormalCore(Tensor output, ulong seed, ulong offset, float mean, float std) =>
        ElementWise.For(_pool, output.ElementCount, new RandomNormalKernel(Floats(output), output.ElementCount, seed, offset, mean, std));

    /// <summary>
    /// Fills its range block by block from <see cref="Philox.Normals(ulong, ulong, ulong)"/>; chunks start at multiples of four, so each
    /// chunk holds whole blocks (the last one may end inside a block).
    /// </summary>
    private readonly unsafe struct RandomNormalKernel(float* output, long count, ulong seed, ulong offset, float mean, float std) : IRangeKernel
    {
        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            long end = Math.Min(count, start + length);
            for (long i = start; i < end; i += 4)
            {
                var (n0, n1, n2, n3) = Philox.Normals(seed, offset, (ulong)i >> 2);
                output[i] = (float)(mean + std * n0);
                if (i + 1 < end) output[i + 1] = (float)(mean + std * n1);
                if (i + 2 < end) output[i + 2] = (float)(mean + std * n2);
                if (i + 3 < end) output[i + 3] = (float)(mean + std * n3);
            }
        }
    }
}
