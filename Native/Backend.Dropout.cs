namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// Inverted dropout: <c>output[i] = keep(i) ? input[i] / (1 - probability) : 0</c>, where keep(i) comes from
    /// <see cref="Philox"/> keyed by (<paramref name="seed"/>, <paramref name="offset"/>) and the element index i,
    /// so every backend draws the same mask and backward regenerates it instead of storing it.
    /// <paramref name="output"/> may be <paramref name="input"/> itself. Probability 0 is the identity.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes differ, the tensors partly overlap, or probability is outside [0, 1).</exception>
    public void Dropout(Tensor output, Tensor input, float probability, ulong seed, ulong offset)
    {
        Check.Operand(this, output, nameof(output));
        Check.Operand(this, input, nameof(input));
        Check.SameShape(output, nameof(output), input, nameof(input));
        InPlaceOrDisjoint(output, nameof(output), input, nameof(input));
        CheckDropProbability(probability, nameof(probability));
        DropoutCore(output, input, probability, seed, offset);
        KeepAlive(output, input);
    }

    /// <summary><c>gradInput += mask * gradOutput / (1 - probability)</c> with the forward's mask (same seed and offset).</summary>
    /// <exception cref="ArgumentException">Shapes differ, the tensors overlap, or probability is outside [0, 1).</exception>
    public void DropoutBackward(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset)
    {
        Check.Operand(this, gradInput, nameof(gradInput));
        Check.Operand(this, gradOutput, nameof(gradOutput));
        Check.SameShape(gradInput, nameof(gradInput), gradOutput, nameof(gradOutput));
        Check.Disjoint(gradInput, nameof(gradInput), gradOutput, nameof(gradOutput));
        CheckDropProbability(probability, nameof(probability));
        DropoutBackwardCore(gradInput, gradOutput, probability, seed, offset);
        KeepAlive(gradInput, gradOutput);
    }

    /// <summary>Kernel of <see cref="Dropout"/>; operands already validated.</summary>
    protected abstract void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset);
    /// <summary>Kernel of <see cref="DropoutBackward"/>; operands already validated.</summary>
    protected abstract void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset);

    // [0, 1): the largest float below 1 is the top of the closed range Check.InRange takes (1 would divide by zero).
    private static void CheckDropProbability(float probability, string name) =>
        Check.Fraction(probability, name);
}
