namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary><c>output = f(input)</c> element-wise. <paramref name="output"/> may be <paramref name="input"/> itself.</summary>
    /// <exception cref="ArgumentException">Shapes differ, the tensors partly overlap, the kind is unknown, or the slope is not finite.</exception>
    public void Activation(Tensor output, Tensor input, ActivationFunction function)
    {
        Check.Operand(this, output, nameof(output));
        Check.Operand(this, input, nameof(input));
        Check.SameShape(output, nameof(output), input, nameof(input));
        InPlaceOrDisjoint(output, nameof(output), input, nameof(input));
        CheckFunction(function);
        ActivationCore(output, input, function);
        KeepAlive(output, input);
    }

    /// <summary><c>gradInput += f'(input) * gradOutput</c>.</summary>
    /// <exception cref="ArgumentException">Shapes differ, gradInput overlaps an input, the kind is unknown, or the slope is not finite.</exception>
    public void ActivationBackward(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function)
    {
        Check.Operand(this, gradInput, nameof(gradInput));
        Check.Operand(this, gradOutput, nameof(gradOutput));
        Check.Operand(this, input, nameof(input));
        Check.SameShape(gradOutput, nameof(gradOutput), input, nameof(input));
        Check.SameShape(gradInput, nameof(gradInput), input, nameof(input));
        Check.Disjoint(gradInput, nameof(gradInput), gradOutput, nameof(gradOutput));
        Check.Disjoint(gradInput, nameof(gradInput), input, nameof(input));
        CheckFunction(function);
        ActivationBackwardCore(gradInput, gradOutput, input, function);
        KeepAlive(gradInput, gradOutput, input);
    }

    /// <summary>Kernel of <see cref="Activation"/>; operands already validated.</summary>
    protected abstract void ActivationCore(Tensor output, Tensor input, ActivationFunction function);
    /// <summary>Kernel of <see cref="ActivationBackward"/>; operands already validated.</summary>
    protected abstract void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function);

    private static void CheckFunction(ActivationFunction function)
    {
        if (function.Kind is < ActivationKind.Relu or > ActivationKind.ScaledLeakyRelu)
            throw new ArgumentException($"'{nameof(function)}' has unknown kind {function.Kind}", nameof(function));
        if (function.Kind == ActivationKind.ScaledLeakyRelu)
            Check.Finite(function.NegativeSlope, $"{nameof(function)}.{nameof(function.NegativeSlope)}");
    }

    /// <summary>
    /// An element-wise op may write the very view it reads (element i only reads element i), but a partial
    /// overlap would read elements already overwritten.
    /// </summary>
    private static void InPlaceOrDisjoint(Tensor output, string outputName, Tensor input, string inputName) =>
        Check.SameViewOrDisjoint(output, outputName, input, inputName);
}
