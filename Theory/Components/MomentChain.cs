namespace DeepScaleLM.Theory.Components;

/// <summary>
/// Components applied one after another, so a block reads like its architecture: forward runs them in order, backward
/// re-derives each component's forward input and runs them in reverse.
/// </summary>
public sealed class MomentChain : IMomentMap
{
    private readonly IMomentMap[] _components;

    /// <summary>A chain of the given components, first applied first.</summary>
    /// <param name="components">The components in forward order.</param>
    public MomentChain(params IMomentMap[] components) => _components = components;

    /// <summary>The output moments after every component in turn.</summary>
    /// <param name="input">Moments of the first component's input.</param>
    public SignalMoments Forward(SignalMoments input)
    {
        foreach (var component in _components) input = component.Forward(input);
        return input;
    }

    /// <summary>The gradient at the chain's input, each component given its own forward input.</summary>
    /// <param name="input">Moments of the first component's input.</param>
    /// <param name="outputGradient">Moments of the gradient at the last component's output.</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient)
    {
        // The kernel recursion calls this once per token pair: no allocation.
        Span<SignalMoments> inputs = stackalloc SignalMoments[_components.Length];
        for (int i = 0; i < _components.Length; i++)
        {
            inputs[i] = input;
            input = _components[i].Forward(input);
        }
        for (int i = _components.Length - 1; i >= 0; i--)
            outputGradient = _components[i].Backward(inputs[i], outputGradient);
        return outputGradient;
    }
}

/// <summary>
/// H heads with independent weights reading the same input, outputs concatenated: each output coordinate has one head's
/// moments, and the input's gradient is the sum of H uncorrelated contributions (H times one head's variance and
/// covariance, so the same correlation).
/// </summary>
internal sealed record ParallelHeads(IMomentMap Head, int Count) : IMomentMap
{
    public SignalMoments Forward(SignalMoments input) => Head.Forward(input);

    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient)
    {
        var oneHead = Head.Backward(input, outputGradient);
        return oneHead with { Variance = oneHead.Variance * Count };
    }
}
