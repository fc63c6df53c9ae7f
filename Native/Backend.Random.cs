namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// <c>output[i] = mean + std * n_i</c> with n_i standard normal from the <see cref="Philox"/> stream (seed, offset):
    /// Box-Muller on each block of four words, in float64 and rounded once, so every backend draws the same values
    /// (to float rounding of their log and sine) and a tensor of any size fills in one pass on its own device.
    /// </summary>
    /// <remarks>
    /// Block k gives elements 4k..4k+3: u_j = (word_j + 1/2) 2^-32 in (0, 1), radius sqrt(-2 ln u_0) and angle
    /// 2 pi u_1 give n_{4k} = r cos, n_{4k+1} = r sin, and words 2 and 3 the next pair. Different offsets are
    /// independent streams.
    /// </remarks>
    /// <exception cref="ArgumentException">The tensor is not float32 on this device, or mean or std is not finite.</exception>
    public void RandomNormal(Tensor output, ulong seed, ulong offset, float mean = 0f, float std = 1f)
    {
        Check.Operand(this, output, nameof(output));
        Check.Finite(mean, nameof(mean));
        Check.Finite(std, nameof(std));
        RandomNormalCore(output, seed, offset, mean, std);
        KeepAlive(output);
    }

    /// <summary>Kernel of <see cref="RandomNormal"/>; operands already validated.</summary>
    protected abstract void RandomNormalCore(Tensor output, ulong seed, ulong offset, float mean, float std);
}
