namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary><c>output = f(input)</c> element-wise. <paramref name="output"/> may be <paramref name="input"/> itself.</summary>
    /// <exception cref="ArgumentException">Shapes differ, or the slope is not finite.</exception>
    public void Activation(Tensor output, Tensor input, ActivationFunction function)
    {
        ActivationCore(output, input, function);
    }

    /// <summary><c>gradInput += f'(input) * gradOutput</c>.</summary>
    public void ActivationBackward(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function)
    {
        ActivationBackwardCore(gradInput, gradOutput, input, function);
    }

    /// <summary>Kernel of <see cref="Activation"/>; operands already validated.</summary>
    protected abstract void ActivationCore(Tensor output, Tensor input, ActivationFunction function);
    /// <summary>Kernel of <see cref="ActivationBackward"/>; operands already validated.</summary>
    protected abstract void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function);
}
