namespace DeepScaleLM.Native;

/// <summary>The element-wise nonlinearities of a feed-forward block.</summary>
public enum ActivationKind
{
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>x/2 * (1 + erf(x / sqrt 2)), the exact GeLU.</summary>
    GeluErf,
    /// <summary>x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), GPT-2's approximation.</summary>
    GeluTanh,
    /// <summary>TAT's scaled leaky ReLU sqrt(2/(1+a^2)) * leaky_relu(x, a) (Zhang et al. 2022; spa-theory.md 3).</summary>
    ScaledLeakyRelu,
}

/// <summary>An activation and its parameter (the negative slope a of <see cref="ActivationKind.ScaledLeakyRelu"/>).</summary>
/// <param name="Kind">Which function.</param>
/// <param name="NegativeSlope">Slope a for x &lt; 0 (scaled leaky ReLU only).</param>
public readonly record struct ActivationFunction(ActivationKind Kind, float NegativeSlope = 0f)
{
    /// <summary>ReLU.</summary>
    public static ActivationFunction Relu => new(ActivationKind.Relu);
    /// <summary>Exact (erf) GeLU.</summary>
    public static ActivationFunction GeluErf => new(ActivationKind.GeluErf);
    /// <summary>Tanh-approximated GeLU.</summary>
    public static ActivationFunction GeluTanh => new(ActivationKind.GeluTanh);
    /// <summary>TAT's scaled leaky ReLU with negative slope <paramref name="negativeSlope"/>.</summary>
    public static ActivationFunction ScaledLeakyRelu(float negativeSlope) => new(ActivationKind.ScaledLeakyRelu, negativeSlope);
}
