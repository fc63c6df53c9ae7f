namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// Inverted dropout: <c>output[i] = keep(i) ? input[i] / (1 - probability) : 0</c>, where keep(i) comes from
    /// <see cref="Philox"/> keyed by (<paramref name="seed"/>, <paramref name="offset"/>) and the element index i,
    /// so every backend draws the same mask and backward regenerates it instead of storing it.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes differ, or probability is outside [0, 1).</exception>
    public void Dropout(Tensor output, Tensor input, float probability, ulong seed, ulong offset)
    {
        DropoutCore(output, input, probability, seed, offset);
    }

    /// <summary><c>gradInput += mask * gradOutput / (1 - probability)</c> with the forward's mask.</summary>
    public void DropoutBackward(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset)
    {
        DropoutBackwardCore(gradInput, gradOutput, probability, seed, offset);
    }

    /// <summary>Kernel of <see cref="Dropout"/>; operands already validated.</summary>
    protected abstract void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset);
    /// <summary>Kernel of <see cref="DropoutBackward"/>; operands already validated.</summary>
    protected abstract void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset);
}
